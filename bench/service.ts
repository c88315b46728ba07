import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { statSeconds } from './cpu.js';
import { getStatus } from './enrich-client.js';

/** A Node process serving HTTP on loopback, measured from the outside through /proc. */
export interface ChildServer {
  name: string;
  pid: number;
  url: string;
  /** Peak resident set size (VmHWM) since start or since the last resetPeak(), in bytes. */
  peakRss(): Promise<number>;
  /** Current resident set size (VmRSS), in bytes. */
  rss(): Promise<number>;
  /** Starts a new VmHWM window (Linux clear_refs 5); false when the kernel refused it. */
  resetPeak(): Promise<boolean>;
  /** User + system CPU seconds the process has used so far. */
  cpuSeconds(): Promise<number>;
  /** Log lines (stdout and stderr) so far that contain `text`, which must be one of the options' `watch`. */
  countLines(text: string): number;
  /** The last lines the process wrote, for a diagnosis when it fails. */
  tail(lines?: number): string;
  /** SIGTERM, then SIGKILL if it has not exited within the grace period. */
  stop(graceMs?: number): Promise<void>;
}

export interface ChildOptions {
  name: string;
  /** Script to run, relative to cwd: a .ts file runs with `--import tsx`, a .js file as it is. */
  script: string;
  port: number;
  env: Record<string, string>;
  /** Extra Node flags (e.g. --cpu-prof) placed before the script. */
  nodeFlags?: string[];
  /** Variables of the parent environment that must not reach the child (its configuration is explicit). */
  dropEnv?: readonly string[];
  readyPath?: string;
  readyTimeoutMs?: number;
  /** Texts whose log lines are counted for the whole life of the process. */
  watch?: readonly string[];
}

const KEPT_LINES = 2000;

/** A port nobody listens on right now; the child binds it a moment later. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function statusField(pid: number, field: string): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status);
  if (!match?.[1]) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}

async function waitReady(url: string, child: ChildProcess, timeoutMs: number, tail: () => string): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`child exited (${child.exitCode ?? child.signalCode}) before ${url} answered:\n${tail()}`);
    }
    try {
      const status = await getStatus(url);
      if (status >= 200 && status < 300) return;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms:\n${tail()}`);
}

/**
 * Spawns `node --import tsx <script>` so that its memory and CPU are its own, and waits until it answers
 * on readyPath.
 */
export async function startChild(options: ChildOptions): Promise<ChildServer> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !options.dropEnv?.includes(key)) env[key] = value;
  }
  Object.assign(env, options.env, { PORT: String(options.port), HOST: '127.0.0.1' });
  // TypeScript sources run through tsx; the built service (dist/*.js) runs as in production.
  const loader = options.script.endsWith('.ts') ? ['--import', 'tsx'] : [];
  const child = spawn(process.execPath, [...loader, ...(options.nodeFlags ?? []), options.script], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const counts = new Map<string, number>();
  const watched = new Set(options.watch ?? []);
  const collector = () => {
    // A chunk may end inside a line; the rest of it comes with the next chunk.
    let partial = '';
    return (chunk: Buffer) => {
      const parts = (partial + chunk.toString('utf8')).split('\n');
      partial = parts.pop() ?? '';
      for (const line of parts) {
        for (const text of watched) if (line.includes(text)) counts.set(text, (counts.get(text) ?? 0) + 1);
        lines.push(line);
      }
      if (lines.length > KEPT_LINES) lines.splice(0, lines.length - KEPT_LINES);
    };
  };
  child.stdout?.on('data', collector());
  child.stderr?.on('data', collector());
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const tail = (count = 30) => lines.slice(-count).join('\n');
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not spawn ${options.name}`);
  const url = `http://127.0.0.1:${options.port}`;

  const stop = async (graceMs = 20_000) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  };
  try {
    await waitReady(`${url}${options.readyPath ?? '/healthz'}`, child, options.readyTimeoutMs ?? 30_000, tail);
  } catch (error) {
    await stop(2000);
    throw error;
  }

  return {
    name: options.name,
    pid,
    url,
    peakRss: () => statusField(pid, 'VmHWM'),
    rss: () => statusField(pid, 'VmRSS'),
    async resetPeak() {
      try {
        await writeFile(`/proc/${pid}/clear_refs`, '5');
        return true;
      } catch {
        return false;
      }
    },
    async cpuSeconds() {
      const seconds = await statSeconds(`/proc/${pid}/stat`);
      if (seconds === undefined) throw new Error(`${options.name} has exited`);
      return seconds;
    },
    countLines(text) {
      if (!watched.has(text)) throw new Error(`${options.name}: lines with ${JSON.stringify(text)} are not counted`);
      return counts.get(text) ?? 0;
    },
    tail,
    stop,
  };
}
