import { execFileSync } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import type pg from 'pg';

const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** utime + stime of a /proc/…/stat file in seconds; undefined for a process or thread that has gone. */
export async function statSeconds(path: string): Promise<number | undefined> {
  const stat = await readFile(path, 'utf8').catch(() => undefined);
  if (stat === undefined) return undefined;
  // The command name may hold spaces and parentheses; fields are counted after its closing one.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/**
 * A process's CPU seconds so far, split between its main thread (the event loop) and all its other threads
 * together: V8's compiler and garbage-collection helpers, libuv's pool, worker threads such as Team Cymru's.
 */
export async function threadSeconds(pid: number): Promise<{ main: number; others: number }> {
  let main = 0;
  let others = 0;
  for (const tid of await readdir(`/proc/${pid}/task`).catch(() => [] as string[])) {
    const seconds = (await statSeconds(`/proc/${pid}/task/${tid}/stat`)) ?? 0;
    if (tid === String(pid)) main = seconds;
    else others += seconds;
  }
  return { main, others };
}

/**
 * CPU seconds used so far by the PostgreSQL backends connected to `database` (from /proc, so the machine's
 * other work does not count), by backend; a backend that exits takes its count with it.
 */
export async function backendCpuSeconds(admin: pg.Client, database: string): Promise<Map<number, number>> {
  const { rows } = await admin.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = $1', [database]);
  const seconds = new Map<number, number>();
  for (const { pid } of rows) {
    const used = await statSeconds(`/proc/${pid}/stat`);
    if (used !== undefined) seconds.set(pid, used);
  }
  return seconds;
}

export function cpuSince(before: Map<number, number>, after: Map<number, number>): number {
  let total = 0;
  for (const [pid, seconds] of after) total += seconds - (before.get(pid) ?? 0);
  return total;
}

/** The machine's CPU time since boot from /proc/stat, in ticks: busy, idle (with I/O wait), and stolen by the hypervisor. */
export interface MachineTicks {
  busy: number;
  idle: number;
  steal: number;
}

export async function machineTicks(): Promise<MachineTicks> {
  const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0] ?? '';
  // cpu user nice system idle iowait irq softirq steal guest guest_nice; guest time is already in user.
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = line
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  return { busy: user + nice + system + irq + softirq, idle: idle + iowait, steal };
}

/** What share of all the cores' time between two readings was busy, and what share the hypervisor took. */
export function machineShares(before: MachineTicks, after: MachineTicks): { busy: number; steal: number } {
  const busy = after.busy - before.busy;
  const steal = after.steal - before.steal;
  const all = busy + steal + (after.idle - before.idle);
  return all <= 0 ? { busy: 0, steal: 0 } : { busy: busy / all, steal: steal / all };
}

/**
 * How fast this machine's CPU is right now: milliseconds for a fixed piece of work like the service's (JSON of
 * 10,000 records, made and parsed), the best of five. On a shared virtual machine this moves from hour to
 * hour; a bench run is compared with another through it.
 */
export function calibrationMs(): number {
  const records = Array.from({ length: 10_000 }, (_, i) => ({
    ip: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
    asn: { number: 64_512 + (i % 1000), name: `AS${i % 1000} EXAMPLE`, prefix: `10.${i & 255}.0.0/16`, country: 'US' },
    sources: { maxmind: { status: 'ok', fetchedAt: '2026-12-01T00:00:00.000Z' }, cymru: { status: 'ok', fetchedAt: null } },
  }));
  let best = Number.POSITIVE_INFINITY;
  for (let run = 0; run < 5; run++) {
    const started = performance.now();
    const parsed = JSON.parse(JSON.stringify(records)) as unknown[];
    if (parsed.length !== records.length) throw new Error('calibration lost records');
    best = Math.min(best, performance.now() - started);
  }
  return best;
}
