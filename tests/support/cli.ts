import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** The built command, as package.json's bin names it. */
export const CLI = join(ROOT, 'dist', 'cli', 'main.js');

const run = promisify(execFile);
const STAMPS = join(ROOT, 'node_modules', '.cache', 'ipenrich-cli-build');
const STALE_LOCK_MS = 5 * 60_000;

/**
 * Builds the service, the command and the web page into dist/ once per test run (for every test that runs the built
 * code, so that no test starts a child while another compiles over its files): every test file of a run is a child of
 * the same vitest process, so its id marks the build as done, and a lock directory keeps two files from
 * compiling at once. The compile steps of `npm run build` only: `npm test` has generated the Prisma client
 * already, and generating it again would rewrite files that other test files are importing.
 */
export async function buildDist(): Promise<void> {
  await mkdir(STAMPS, { recursive: true });
  const stamp = join(STAMPS, `built-for-${process.ppid}`);
  const lock = join(STAMPS, 'lock');
  for (;;) {
    if (existsSync(stamp)) return;
    try {
      await mkdir(lock);
    } catch {
      const held = await stat(lock).catch(() => undefined);
      if (held && Date.now() - held.mtimeMs > STALE_LOCK_MS) await rm(lock, { recursive: true, force: true });
      await sleep(200);
      continue;
    }
    try {
      if (!existsSync(stamp)) {
        if (!existsSync(join(ROOT, 'src', 'generated', 'prisma'))) await run('npm', ['run', 'generate'], { cwd: ROOT });
        await run(join(ROOT, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.build.json'], { cwd: ROOT });
        // The web page (dist/web), for the browser tests.
        await run(join(ROOT, 'node_modules', '.bin', 'vite'), ['build', '--logLevel', 'warn'], { cwd: ROOT });
        // tsc writes files without the execute bit, which npx needs to run the bin; npm run build sets it too.
        await chmod(CLI, 0o755);
        await writeFile(stamp, '');
      }
    } finally {
      await rm(lock, { recursive: true, force: true });
    }
  }
}

export interface CliRun {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Peak resident set size in MB, as /proc said last before the command exited. */
  peakRssMb: number | undefined;
}

export interface CliOptions {
  env?: Record<string, string | undefined>;
  stdin?: string | Buffer;
  cwd?: string;
  timeoutMs?: number;
  /** Sample the child's peak RSS from /proc while it runs. */
  measureRss?: boolean;
}

/**
 * The environment a command gets in the tests: the service's variables removed (an engineer's shell may set
 * them), then the test's own.
 */
function childEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(IPENRICH_|DATABASE_|REDIS_|MAXMIND_|GREYNOISE_|DSHIELD_|CYMRU_|DATA_DIR$|ROLE$|PORT$|HOST$|LOG_LEVEL$)/.test(key)) continue;
    env[key] = value;
  }
  for (const [key, value] of Object.entries(extra)) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  return env;
}

async function peakRss(pid: number): Promise<number | undefined> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => undefined);
  const kb = status && /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
  return kb ? Number(kb) / 1024 : undefined;
}

/** Starts the built command; the caller reads, signals and awaits it (see finished). */
export function startCli(args: string[], options: CliOptions = {}): ChildProcess {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: options.cwd ?? ROOT,
    env: childEnv(options.env),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  if (options.stdin !== undefined) child.stdin?.end(options.stdin);
  else child.stdin?.end();
  return child;
}

/** Waits for a started command, collecting its output. */
export async function finished(child: ChildProcess, options: Pick<CliOptions, 'timeoutMs' | 'measureRss'> = {}): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  let peakRssMb: number | undefined;
  const sampler =
    options.measureRss && child.pid !== undefined
      ? setInterval(() => {
          void peakRss(child.pid as number).then((mb) => (peakRssMb = mb ?? peakRssMb));
        }, 50)
      : undefined;
  const timeout = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
  try {
    const [status, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
      child.once('exit', (code, sig) => resolve([code, sig])),
    );
    // 'exit' may come before the last output has been read.
    const open = [child.stdout, child.stderr].filter((stream): stream is Readable => stream !== null && !stream.readableEnded);
    await Promise.all(open.map((stream) => once(stream, 'end')));
    return { status, signal, stdout, stderr, peakRssMb };
  } finally {
    clearTimeout(timeout);
    if (sampler) clearInterval(sampler);
  }
}

/** Runs the built command to its end. */
export function runCli(args: string[], options: CliOptions = {}): Promise<CliRun> {
  return finished(startCli(args, options), options);
}

/**
 * Runs a shell command line in a pseudo-terminal (util-linux `script`), so that whatever the line does not
 * redirect (standard error, at least) is a terminal; resolves to what the terminal showed.
 */
export async function runInTerminal(
  commandLine: string,
  options: Pick<CliOptions, 'env' | 'cwd' | 'timeoutMs'> = {},
): Promise<{ status: number | null; screen: string; text: string }> {
  const child = spawn('script', ['-qfec', commandLine, '/dev/null'], {
    cwd: options.cwd ?? ROOT,
    env: { ...childEnv(options.env), COLUMNS: '120', LINES: '40', TERM: 'xterm-256color' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  child.stdin.end();
  const run = await finished(child, options);
  const screen = run.stdout + run.stderr;
  // The same without the terminal's control sequences (cursor moves, clearing), one redraw after another.
  // eslint-disable-next-line no-control-regex
  const text = screen.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '');
  return { status: run.status, screen, text };
}
