import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectDatabase, type DatabaseHandle } from '../../src/db/client.js';
import { DatabaseUnavailableError } from '../../src/db/errors.js';
import { applyMigrations } from '../../src/db/migrate.js';
import { RecordStore } from '../../src/db/record-store.js';
import type { Asn, StoredSourceState } from '../../src/record/model.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

let testDb: TestDatabase;
let handle: DatabaseHandle;
let store: RecordStore;

beforeAll(async () => {
  testDb = await createTestDatabase();
  handle = connectDatabase(testDb.url);
  await applyMigrations(handle.pool);
  store = new RecordStore(handle);
});
afterAll(async () => {
  await handle.close();
  await testDb.drop();
});

const asn = (number: number): Asn => ({
  number,
  numbers: [number],
  name: `AS${number}`,
  prefix: '45.0.0.0/16',
  country: 'NL',
  registry: 'ripencc',
  allocated: '2014-01-01',
  source: 'cymru',
});
const state = <T>(data: T, fetchedAt = '2026-11-22T10:00:00.000Z'): StoredSourceState<T> => ({ status: 'ok', fetchedAt, data });
const notObserved = { noise: false, riot: false, classification: null, name: null, link: null, lastSeen: null };

describe('record store', () => {
  it('reads back what it wrote, for a list of 5,000 in chunks', async () => {
    const ips = Array.from({ length: 5000 }, (_, i) => `45.${i >> 8}.${i & 255}.1`);
    await store.save(ips.map((ip, i) => ({ ip, sources: { cymru: state(asn(i)) }, lookups: 1 })), new Date());
    const loaded = await store.load(ips);
    expect(loaded.size).toBe(5000);
    expect(loaded.get(ips[4999]!)!.sources.cymru!.data!.number).toBe(4999);
    expect(loaded.get(ips[0]!)!.sources.greynoise).toBeNull();
  });

  it('writes each source to its own columns, and an answer without data as NULL rather than the jsonb null', async () => {
    const ip = '45.201.0.1';
    const geo = { country: 'NL', countryName: 'Netherlands', city: null, latitude: 52.4, longitude: 4.9, accuracyRadius: 100, timezone: null };
    const dshield = { attacks: 3, reports: 4, firstSeen: '2026-11-01', lastSeen: '2026-11-20', threatFeeds: ['blocklistde22'], abuseContact: null };
    await store.save(
      [
        {
          ip,
          sources: {
            maxmind: { ...state({ geo, asn: null }, '2026-11-22T10:00:01.000Z'), database: 'GeoLite2-City 2026-11-17' },
            cymru: { status: 'not_found', fetchedAt: '2026-11-22T10:00:02.000Z', data: null },
            greynoise: state(notObserved, '2026-11-22T10:00:03.000Z'),
            dshield: state(dshield, '2026-11-22T10:00:04.000Z'),
          },
          lookups: 3,
        },
      ],
      new Date('2026-11-22T10:00:05.000Z'),
    );
    const { rows } = await handle.pool.query(
      `SELECT maxmind, maxmind_status, maxmind_fetched_at, maxmind_database, cymru IS NULL AS cymru_null, cymru_status,
              cymru_fetched_at, greynoise, greynoise_status, greynoise_fetched_at, dshield, dshield_status,
              dshield_fetched_at, lookup_count FROM ip_record WHERE ip = $1`,
      [ip],
    );
    expect(rows[0]).toEqual({
      maxmind: { geo, asn: null },
      maxmind_status: 'ok',
      maxmind_fetched_at: new Date('2026-11-22T10:00:01.000Z'),
      maxmind_database: 'GeoLite2-City 2026-11-17',
      cymru_null: true,
      cymru_status: 'not_found',
      cymru_fetched_at: new Date('2026-11-22T10:00:02.000Z'),
      greynoise: notObserved,
      greynoise_status: 'ok',
      greynoise_fetched_at: new Date('2026-11-22T10:00:03.000Z'),
      dshield,
      dshield_status: 'ok',
      dshield_fetched_at: new Date('2026-11-22T10:00:04.000Z'),
      lookup_count: 3,
    });
  });

  it('never overwrites a source the update does not carry, even when two writes race', async () => {
    const ip = '45.200.0.1';
    await store.save([{ ip, sources: { cymru: state(asn(1)) }, lookups: 1 }], new Date());
    await Promise.all([
      store.save([{ ip, sources: { greynoise: state(notObserved) }, lookups: 1 }], new Date()),
      store.save([{ ip, sources: { cymru: state(asn(2), '2026-11-22T11:00:00.000Z') }, lookups: 0 }], new Date()),
    ]);
    const record = (await store.load([ip])).get(ip)!;
    expect(record.sources.cymru!.data!.number).toBe(2);
    expect(record.sources.greynoise!.data).toEqual(notObserved);
    const { rows } = await handle.pool.query<{ lookup_count: number }>('SELECT lookup_count FROM ip_record WHERE ip = $1', [ip]);
    expect(rows[0]!.lookup_count).toBe(2);
  });

  it('lets concurrent saves of overlapping addresses in different orders all succeed, counting every lookup', async () => {
    const addresses = Array.from({ length: 6000 }, (_, i) => `46.${i >> 8}.${i & 255}.1`);
    // Windows of 4,000 (two statements each) that overlap their neighbours, listed forwards, backwards and
    // interleaved, so that without one global lock order the statements of two saves wait for each other.
    const orders = [
      (ips: string[]) => ips,
      (ips: string[]) => ips.toReversed(),
      (ips: string[]) => [...ips.filter((_, i) => i % 2 === 1), ...ips.filter((_, i) => i % 2 === 0)],
    ];
    const saves = Array.from({ length: 12 }, (_, n) => {
      const window = addresses.slice((n % 5) * 500, (n % 5) * 500 + 4000);
      return orders[n % orders.length]!(window);
    });
    const results = await Promise.allSettled(
      saves.map((ips, n) =>
        store.save(ips.map((ip, i) => ({ ip, sources: n % 2 === 0 ? { cymru: state(asn(i)) } : {}, lookups: 1 })), new Date()),
      ),
    );

    const failures = results.flatMap((result) => (result.status === 'rejected' ? [String((result.reason as Error).cause)] : []));
    expect(failures).toEqual([]);
    const expected = new Map<string, number>();
    for (const ips of saves) for (const ip of ips) expected.set(ip, (expected.get(ip) ?? 0) + 1);
    const { rows } = await handle.pool.query<{ ip: string; lookup_count: number }>(
      'SELECT ip, lookup_count FROM ip_record WHERE ip = ANY($1::text[])',
      [addresses],
    );
    expect(new Map(rows.map((row) => [row.ip, row.lookup_count]))).toEqual(expected);
  });

  it('stores upstream text holding NUL or a lone surrogate, with U+FFFD in their place, and the rest of the list', async () => {
    const odd = { ...notObserved, name: 'Scanner\u0000Co \ud800 \udc00 \u{1F600}', classification: 'benign' };
    await store.save(
      [
        { ip: '45.93.1.1', sources: { greynoise: state(odd) }, lookups: 1 },
        { ip: '45.93.1.2', sources: { cymru: state(asn(64500)) }, lookups: 1 },
      ],
      new Date(),
    );
    const loaded = await store.load(['45.93.1.1', '45.93.1.2']);
    expect(loaded.get('45.93.1.1')?.sources.greynoise?.data).toEqual({ ...odd, name: 'Scanner\ufffdCo \ufffd \ufffd \u{1F600}' });
    expect(loaded.get('45.93.1.2')?.sources.cymru?.data).toEqual(asn(64500));
  });

  it('keeps updated_at when only lookups are counted', async () => {
    const ip = '45.200.0.2';
    await store.save([{ ip, sources: { cymru: state(asn(3)) }, lookups: 1 }], new Date('2026-11-22T10:00:00Z'));
    await store.save([{ ip, sources: {}, lookups: 4 }], new Date('2026-11-22T12:00:00Z'));
    const { rows } = await handle.pool.query<{ lookup_count: number; updated_at: Date; last_seen: Date }>(
      'SELECT lookup_count, updated_at, last_seen FROM ip_record WHERE ip = $1',
      [ip],
    );
    expect(rows[0]).toEqual({
      lookup_count: 5,
      updated_at: new Date('2026-11-22T10:00:00Z'),
      last_seen: new Date('2026-11-22T12:00:00Z'),
    });
  });
});

describe('record store without its database', () => {
  it('throws DatabaseUnavailableError, with the driver error as its cause, from every call', async () => {
    const gone = await createTestDatabase();
    const goneHandle = connectDatabase(gone.url, { timeoutMs: 2000 });
    const goneStore = new RecordStore(goneHandle);
    await gone.drop();
    try {
      for (const call of [
        () => goneStore.load(['45.9.9.9']),
        () => goneStore.save([{ ip: '45.9.9.9', sources: { cymru: state(asn(1)) }, lookups: 1 }], new Date()),
        () => goneStore.ping(),
      ]) {
        const error: unknown = await call().then(() => undefined, (reason: unknown) => reason);
        expect(error).toBeInstanceOf(DatabaseUnavailableError);
        expect((error as Error).cause).toBeInstanceOf(Error);
      }
    } finally {
      await goneHandle.close();
    }
  });
});

describe('record store with writes held up by a row lock', () => {
  /** Holds the row of `ip` locked on a connection of its own, as a long transaction elsewhere would. */
  async function lockRow(pool: DatabaseHandle['pool'], ip: string) {
    const locker = await pool.connect();
    await locker.query('BEGIN');
    await locker.query('SELECT ip FROM ip_record WHERE ip = $1 FOR UPDATE', [ip]);
    let held = true;
    return async () => {
      if (!held) return;
      held = false;
      await locker.query('COMMIT');
      locker.release();
    };
  }
  const update = (ip: string, number: number) => ({ ip, sources: { cymru: state(asn(number)) }, lookups: 1 });

  it('still reads while as many writes wait as the pool has connections', async () => {
    const pool = connectDatabase(testDb.url, { maxConnections: 5 });
    const writer = new RecordStore(pool);
    const locked = '45.201.0.1';
    await writer.save([update(locked, 1)], new Date());
    const unlock = await lockRow(pool.pool, locked);
    try {
      let written = 0;
      const writes = [1, 2, 3, 4].map((n) => writer.save([update(locked, n), update(`45.201.1.${n}`, n)], new Date()).then(() => (written += 1)));
      const read = await Promise.race([writer.load([locked]), new Promise<'stuck'>((resolve) => setTimeout(() => resolve('stuck'), 5000))]);
      expect(read).not.toBe('stuck');
      expect((read as Map<string, unknown>).has(locked)).toBe(true);
      expect(written).toBe(0);
      await unlock();
      await Promise.all(writes);
      expect((await writer.load([1, 2, 3, 4].map((n) => `45.201.1.${n}`))).size).toBe(4);
    } finally {
      await unlock();
      await pool.close();
    }
  });

  it('gives up a write waiting for its turn once a connection wait would have, not a statement timeout per write ahead', async () => {
    const timeoutMs = 1000;
    // Two connections: one turn to write, the other for the lock.
    const pool = connectDatabase(testDb.url, { maxConnections: 2, timeoutMs });
    const writer = new RecordStore(pool);
    const locked = '45.202.0.1';
    await writer.save([update(locked, 1)], new Date());
    const unlock = await lockRow(pool.pool, locked);
    try {
      const started = performance.now();
      const settled = await Promise.all(
        [1, 2, 3, 4, 5, 6].map((n) => writer.save([update(locked, n)], new Date()).then(() => undefined, (error: unknown) => error)),
      );
      const took = performance.now() - started;
      for (const error of settled) expect(error).toBeInstanceOf(DatabaseUnavailableError);
      // One statement timeout, perhaps two when a waiting write got its turn just before its own wait ran out;
      // six in a row without the bound.
      expect(took).toBeLessThan(4 * timeoutMs);
    } finally {
      await unlock();
      await pool.close();
    }
  });
});
