import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { WriteBehind } from '../../src/cache/write-behind.js';
import type { StoredRecord } from '../../src/record/model.js';

const record = (ip: string, updatedAt = '2026-12-01T10:00:00.000Z'): StoredRecord => ({
  ip,
  sources: { maxmind: null, cymru: null, greynoise: null, dshield: null },
  updatedAt,
});

/** A queue over a store that records every write, with the process busy while `busy.now` is true. */
function queue(options: { maxDelayMs?: number; batch?: number } = {}) {
  const writes: StoredRecord[][] = [];
  const busy = { now: false };
  const behind = new WriteBehind({
    write: async (records) => {
      writes.push([...records]);
      await sleep(1);
    },
    busy: () => busy.now,
    maxDelayMs: options.maxDelayMs ?? 10_000,
    batch: options.batch ?? 2,
    pollMs: 2,
  });
  const written = () => writes.flat().map((r) => `${r.ip}@${r.updatedAt.slice(11, 13)}`);
  return { behind, writes, busy, written };
}

async function until(check: () => boolean, ms = 2000): Promise<void> {
  const started = performance.now();
  while (!check()) {
    if (performance.now() - started > ms) throw new Error(`not within ${ms} ms`);
    await sleep(2);
  }
}

describe('the write-behind queue of the shared L1', () => {
  it('writes what was queued once nothing is being answered, in batches, an address once with its latest record', async () => {
    const { behind, writes, written } = queue();
    behind.enqueue([record('1.1.1.1'), record('2.2.2.2'), record('3.3.3.3')]);
    behind.enqueue([record('1.1.1.1', '2026-12-01T11:00:00.000Z')]);
    expect(writes).toHaveLength(0);
    await until(() => behind.size === 0 && writes.length === 2);
    expect(writes.map((batch) => batch.length)).toEqual([2, 1]);
    expect(written()).toEqual(['2.2.2.2@10', '3.3.3.3@10', '1.1.1.1@11']);
  });

  it('holds the records while requests are answered, and writes them once none is or once they waited maxDelayMs', async () => {
    const { behind, writes, busy } = queue({ maxDelayMs: 150 });
    busy.now = true;
    behind.enqueue([record('1.1.1.1')]);
    await sleep(60);
    expect(writes).toHaveLength(0);
    busy.now = false;
    await until(() => writes.length === 1);

    busy.now = true;
    const queued = performance.now();
    behind.enqueue([record('2.2.2.2')]);
    await until(() => writes.length === 2);
    expect(performance.now() - queued).toBeGreaterThanOrEqual(145);
  });

  it('forgets the waiting records of deleted addresses', async () => {
    const { behind, busy, written } = queue();
    busy.now = true;
    behind.enqueue([record('1.1.1.1'), record('2.2.2.2')]);
    behind.forget(['1.1.1.1']);
    busy.now = false;
    await until(() => behind.size === 0);
    await sleep(10);
    expect(written()).toEqual(['2.2.2.2@10']);
  });

  it('goes on with the next batches when a write fails', async () => {
    const written: string[] = [];
    let calls = 0;
    const behind = new WriteBehind({
      write: (records) => {
        calls += 1;
        if (calls === 1) return Promise.reject(new Error('the store is away'));
        written.push(...records.map((r) => r.ip));
        return Promise.resolve();
      },
      busy: () => false,
      maxDelayMs: 10_000,
      batch: 1,
      pollMs: 2,
    });
    behind.enqueue([record('1.1.1.1'), record('2.2.2.2'), record('3.3.3.3')]);
    await until(() => written.length === 2);
    expect(written).toEqual(['2.2.2.2', '3.3.3.3']);
  });

  it('writes everything at once when closed, however busy, and takes nothing after', async () => {
    const { behind, busy, written } = queue();
    busy.now = true;
    behind.enqueue([record('1.1.1.1'), record('2.2.2.2'), record('3.3.3.3')]);
    await behind.close();
    expect(written()).toEqual(['1.1.1.1@10', '2.2.2.2@10', '3.3.3.3@10']);
    behind.enqueue([record('4.4.4.4')]);
    busy.now = false;
    await sleep(20);
    expect(behind.size).toBe(0);
    expect(written()).toHaveLength(3);
  });
});
