import { performance } from 'node:perf_hooks';
import { connectDatabase } from '../src/db/client.js';
import { applyMigrations } from '../src/db/migrate.js';
import { RecordStore } from '../src/db/record-store.js';
import { fullUpdates } from './records.js';

export interface SaveTimings {
  /** Each run on an emptied table: every row is new. */
  insertMs: number[];
  /** Each run over the rows the inserts left: every row conflicts and is updated. */
  resaveMs: number[];
  payloadBytes: number;
}

/** Times RecordStore.save of one list of full updates, as the service calls it, on a migrated database. */
export async function measureSaves(databaseUrl: string, ips: readonly string[], runs: number): Promise<SaveTimings> {
  const database = connectDatabase(databaseUrl);
  try {
    await applyMigrations(database.pool);
    const store = new RecordStore(database);
    const updates = fullUpdates(ips, new Date());
    // The first statement pays for connecting and for Prisma's start-up; that is not a save's cost.
    await store.save(updates.slice(0, 10), new Date());
    const insertMs: number[] = [];
    for (let run = 0; run < runs; run++) {
      await database.pool.query('TRUNCATE ip_record');
      const start = performance.now();
      await store.save(updates, new Date());
      insertMs.push(performance.now() - start);
    }
    const resaveMs: number[] = [];
    for (let run = 0; run < runs; run++) {
      const start = performance.now();
      await store.save(updates, new Date());
      resaveMs.push(performance.now() - start);
    }
    const { rows } = await database.pool.query<{ count: string }>('SELECT count(*) FROM ip_record');
    if (Number(rows[0]?.count) !== ips.length) throw new Error(`expected ${ips.length} rows, found ${rows[0]?.count}`);
    return { insertMs, resaveMs, payloadBytes: Buffer.byteLength(JSON.stringify(updates)) };
  } finally {
    await database.close();
  }
}
