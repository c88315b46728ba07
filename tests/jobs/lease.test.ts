import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectDatabase, type DatabaseHandle } from '../../src/db/client.js';
import { applyMigrations } from '../../src/db/migrate.js';
import { initialProgress } from '../../src/jobs/model.js';
import { MAX_FAILURES } from '../../src/jobs/runner.js';
import { JobStore } from '../../src/jobs/store.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

let database: TestDatabase;
let handles: DatabaseHandle[];
beforeAll(async () => {
  database = await createTestDatabase();
  // Two connections' worth of stores, as two workers have; no worker runs here to take the jobs first.
  handles = [connectDatabase(database.url), connectDatabase(database.url)];
  await applyMigrations(handles[0]!.pool);
});
afterAll(async () => {
  for (const handle of handles) await handle.close();
  await database.drop();
});

async function queuedJob(store: JobStore): Promise<string> {
  const id = randomUUID();
  await store.create({ id, kind: 'list', label: null, sources: ['maxmind'], refresh: false, createdAt: new Date() });
  await store.open(id, { total: 1, unique: 1, invalid: 0, bogon: 0 }, initialProgress(1, ['maxmind']));
  return id;
}

describe("a job's lease", () => {
  it('goes to one worker of many claiming at once, and to another only once it is released or expired', async () => {
    const stores = handles.map((handle) => new JobStore(handle));
    const id = await queuedJob(stores[0]!);
    const claims = await Promise.all(Array.from({ length: 10 }, (_, i) => stores[i % 2]!.claim(id, `worker-${i}`, 30, new Date())));
    const winners = claims.flatMap((claim, i) => (claim ? [`worker-${i}`] : []));
    expect(winners).toHaveLength(1);
    expect(claims.find((claim) => claim !== null)).toMatchObject({ status: 'running', leaseOwner: winners[0] });

    // Another worker's write is refused while the lease is held by the winner.
    expect(await stores[1]!.renew(id, 'someone-else', 30)).toBeNull();
    await stores[0]!.release(id, winners[0]!, true);
    expect(await stores[1]!.claim(id, 'worker-b', 1, new Date())).not.toBeNull();
    // A lease that is not renewed runs out, and the job goes to whoever claims it next.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect(await stores[0]!.unclaimed()).toContain(id);
    expect(await stores[0]!.claim(id, 'worker-c', 30, new Date())).not.toBeNull();
    expect(await stores[1]!.renew(id, 'worker-b', 30)).toBeNull();
  });

  it('fails the job after MAX_FAILURES failed slices in a row, naming the last error', async () => {
    const store = new JobStore(handles[0]!);
    const id = await queuedJob(store);
    const statuses: Array<string | null> = [];
    for (let attempt = 1; attempt <= MAX_FAILURES; attempt += 1) {
      expect(await store.claim(id, 'worker-a', 30, new Date())).not.toBeNull();
      statuses.push(await store.noteFailure(id, 'worker-a', `attempt ${attempt}: the database went away`, MAX_FAILURES, new Date()));
    }
    expect(statuses).toEqual([...Array<string>(MAX_FAILURES - 1).fill('running'), 'failed']);
    expect(await store.find(id)).toMatchObject({ status: 'failed', error: `attempt ${MAX_FAILURES}: the database went away` });
    expect(await store.claim(id, 'worker-a', 30, new Date())).toBeNull();
  });
});
