import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectDatabase } from '../../src/db/client.js';
import { applyMigrations } from '../../src/db/migrate.js';
import { startHarness } from '../support/app.js';
import { buildDist, runCli } from '../support/cli.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { readResults, submitJob, waitForJob } from '../support/jobs.js';

/** A login role that may read and write the rows of the service's schemas, and create nothing. */
async function rowsOnlyRole(database: TestDatabase): Promise<{ role: string; url: string }> {
  const role = `ipenrich_rows_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: database.url });
  await admin.connect();
  try {
    await admin.query(`CREATE ROLE ${role} LOGIN`);
    await admin.query(`REVOKE CREATE ON SCHEMA public FROM PUBLIC`);
    await admin.query(`REVOKE CREATE, TEMPORARY ON DATABASE ${database.name} FROM PUBLIC`);
    const { rows } = await admin.query<{ name: string }>(`SELECT nspname AS name FROM pg_namespace WHERE nspname IN ('public', 'pgboss')`);
    for (const { name } of rows) {
      await admin.query(`GRANT USAGE ON SCHEMA ${name} TO ${role}`);
      await admin.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${name} TO ${role}`);
      await admin.query(`GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA ${name} TO ${role}`);
    }
  } finally {
    await admin.end();
  }
  const url = new URL(database.url);
  url.username = role;
  return { role, url: url.toString() };
}

async function dropRole(role: string): Promise<void> {
  const admin = new pg.Client({ connectionString: process.env.TEST_ADMIN_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres' });
  await admin.connect();
  try {
    await admin.query(`DROP ROLE IF EXISTS ${role}`);
  } finally {
    await admin.end();
  }
}

describe('ip-enrich migrate', () => {
  let prepared: TestDatabase;
  let role: string | undefined;
  beforeAll(async () => {
    await buildDist();
    prepared = await createTestDatabase();
  }, 120_000);
  afterAll(async () => {
    await prepared.drop();
    if (role) await dropRole(role);
  });

  it('creates the job queue with the tables, so a role without DDL rights runs the API and a worker', async () => {
    const run = await runCli(['migrate'], { env: { DATABASE_URL: prepared.url } });
    expect(run.stderr).toMatch(/the job queue's schema \(pg-boss\) and queues are ready in the database at DATABASE_URL/);
    expect(run.status).toBe(0);
    const restricted = await rowsOnlyRole(prepared);
    role = restricted.role;

    const harness = await startHarness({ database: { ...prepared, url: restricted.url, drop: async () => undefined } });
    try {
      const job = await submitJob(harness.app, { ips: ['8.8.8.8', '81.2.69.160'], sources: ['maxmind', 'cymru'] });
      expect((await waitForJob(harness.app, job.id)).status).toBe('completed');
      expect((await readResults(harness.app, job.id)).map((record) => record.status)).toEqual(['ok', 'ok']);
    } finally {
      await harness.close();
    }
    const again = await runCli(['migrate'], { env: { DATABASE_URL: prepared.url } });
    expect(again.stderr).toMatch(/is up to date/);
    expect(again.status).toBe(0);
  });

  it('is what such a role needs: with only the tables migrated, it cannot start', async () => {
    const tablesOnly = await createTestDatabase();
    let own: string | undefined;
    try {
      const handle = connectDatabase(tablesOnly.url, { timeoutMs: 10_000 });
      await applyMigrations(handle.pool);
      await handle.close();
      const restricted = await rowsOnlyRole(tablesOnly);
      own = restricted.role;
      // pg-boss would create its schema, which takes the right to create in the database.
      await expect(startHarness({ database: { ...tablesOnly, url: restricted.url, drop: async () => undefined } })).rejects.toThrow(
        /permission denied for database/,
      );
    } finally {
      await tablesOnly.drop();
      if (own) await dropRole(own);
    }
  });
});
