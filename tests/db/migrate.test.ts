import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectDatabase } from '../../src/db/client.js';
import { applyMigrations, MigrationError } from '../../src/db/migrate.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

const REPO_MIGRATIONS = fileURLToPath(new URL('../../prisma/migrations', import.meta.url));
const PRISMA_LOCK_KEY = 72707369;
// As `prisma migrate deploy` creates it, to stand in for a database Prisma has already worked on.
const PRISMA_TABLE = `CREATE TABLE "_prisma_migrations" (
  "id" VARCHAR(36) PRIMARY KEY NOT NULL, "checksum" VARCHAR(64) NOT NULL, "finished_at" TIMESTAMPTZ,
  "migration_name" VARCHAR(255) NOT NULL, "logs" TEXT, "rolled_back_at" TIMESTAMPTZ,
  "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(), "applied_steps_count" INTEGER NOT NULL DEFAULT 0)`;

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

let database: TestDatabase;
let admin: pg.Pool;
const pools: pg.Pool[] = [];
const tempDirs: string[] = [];
let schemaCount = 0;

beforeAll(async () => {
  database = await createTestDatabase();
  admin = newPool();
});

afterAll(async () => {
  await Promise.all(pools.map(endPool));
  await database.drop();
  await Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

/** pool.end() resolves before its connections close; dropping the database under them would crash the run. */
async function endPool(pool: pg.Pool): Promise<void> {
  let open = pool.totalCount;
  const closed = new Promise<void>((resolve) => {
    if (open === 0) resolve();
    pool.on('remove', () => {
      if (--open === 0) resolve();
    });
  });
  await pool.end();
  await closed;
}

function newPool(searchPath?: string): pg.Pool {
  const pool = new pg.Pool({
    connectionString: database.url,
    ...(searchPath ? { options: `-c search_path=${searchPath}` } : {}),
  });
  pools.push(pool);
  return pool;
}

/** Its own schema, so each test starts from an empty `_prisma_migrations` in the shared test database. */
async function isolatedSchema(): Promise<string> {
  const schema = `migrate_case_${++schemaCount}`;
  await admin.query(`CREATE SCHEMA ${schema}`);
  return schema;
}

async function migrationsDir(migrations: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ipenrich-migrations-'));
  tempDirs.push(dir);
  await writeFile(join(dir, 'migration_lock.toml'), 'provider = "postgresql"\n');
  for (const [name, sql] of Object.entries(migrations)) {
    await mkdir(join(dir, name));
    await writeFile(join(dir, name, 'migration.sql'), sql);
  }
  return dir;
}

function capturingLogger() {
  const lines: { level: number; msg: string; migration?: string }[] = [];
  const logger = pino(
    { level: 'debug' },
    { write: (line: string) => void lines.push(JSON.parse(line) as (typeof lines)[number]) },
  );
  return {
    logger,
    atLeast: (level: 'info' | 'warn') => lines.filter((line) => line.level >= pino.levels.values[level]!),
  };
}

interface Row {
  id: string;
  checksum: string;
  migration_name: string;
  finished_at: Date | null;
  rolled_back_at: Date | null;
  logs: string | null;
  started_at: Date;
  applied_steps_count: number;
}

async function rows(pool: pg.Pool): Promise<Row[]> {
  return (await pool.query<Row>('SELECT * FROM "_prisma_migrations" ORDER BY migration_name, started_at')).rows;
}

async function tableExists(pool: pg.Pool, table: string): Promise<boolean> {
  const { rows: found } = await pool.query<{ found: string | null }>('SELECT to_regclass($1)::text AS found', [table]);
  return found[0]?.found != null;
}

describe('applyMigrations', () => {
  describe('with the repository migrations', () => {
    let pool: pg.Pool;
    let repoMigrations: string[];

    beforeAll(async () => {
      pool = newPool();
      const entries = await readdir(REPO_MIGRATIONS, { withFileTypes: true });
      repoMigrations = entries.filter((entry) => entry.isDirectory()).map((entry) => entry.name).sort();
    });

    it('applies them to an empty database and records them the way Prisma does', async () => {
      const result = await applyMigrations(pool);

      expect(result).toEqual({ applied: repoMigrations, alreadyApplied: [] });
      expect(await tableExists(pool, 'ip_record')).toBe(true);
      const recorded = await rows(pool);
      expect(recorded.map((row) => row.migration_name)).toEqual(repoMigrations);
      for (const row of recorded) {
        const file = await readFile(join(REPO_MIGRATIONS, row.migration_name, 'migration.sql'));
        expect(row.checksum).toBe(sha256(file));
        expect(row.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
        expect(row.finished_at).toBeInstanceOf(Date);
        expect(row.finished_at!.getTime()).toBeGreaterThanOrEqual(row.started_at.getTime());
        expect(row.rolled_back_at).toBeNull();
        expect(row.logs).toBeNull();
        expect(row.applied_steps_count).toBe(1);
      }
      const { rows: columns } = await pool.query<{ column_name: string; data_type: string; is_nullable: string }>(
        `SELECT column_name, data_type, is_nullable FROM information_schema.columns
          WHERE table_schema = 'public' AND table_name = '_prisma_migrations' ORDER BY ordinal_position`,
      );
      expect(columns.map((c) => `${c.column_name} ${c.data_type} ${c.is_nullable}`)).toEqual([
        'id character varying NO',
        'checksum character varying NO',
        'finished_at timestamp with time zone YES',
        'migration_name character varying NO',
        'logs text YES',
        'rolled_back_at timestamp with time zone YES',
        'started_at timestamp with time zone NO',
        'applied_steps_count integer NO',
      ]);
    });

    it('applies nothing on a second run and logs nothing above debug', async () => {
      const { logger, atLeast } = capturingLogger();

      const result = await applyMigrations(pool, { logger });

      expect(result).toEqual({ applied: [], alreadyApplied: repoMigrations });
      expect(await rows(pool)).toHaveLength(repoMigrations.length);
      expect(atLeast('info')).toEqual([]);
    });
  });

  it('lets two pools migrating the same database at once apply each migration exactly once', async () => {
    const schema = await isolatedSchema();
    // Without IF NOT EXISTS, a second application of any of these would fail.
    const dir = await migrationsDir({
      '001_a': 'CREATE TABLE a (id int);',
      '002_b': 'CREATE TABLE b (id int);',
      '003_c': 'CREATE TABLE c (id int);',
    });
    const first = newPool(schema);
    const second = newPool(schema);
    // Stands in for `prisma migrate deploy` holding its lock while both replicas boot.
    const holder = await admin.connect();
    await holder.query(`SELECT pg_advisory_lock(${PRISMA_LOCK_KEY})`);

    const runs = Promise.all([
      applyMigrations(first, { migrationsDir: dir }),
      applyMigrations(second, { migrationsDir: dir }),
    ]);
    const waiters = async () =>
      (
        await holder.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_locks
            WHERE locktype = 'advisory' AND objid = $1 AND NOT granted
              AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
          [PRISMA_LOCK_KEY],
        )
      ).rows[0]?.n;
    while ((await waiters()) !== 2) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(await tableExists(first, 'a')).toBe(false);
    await holder.query(`SELECT pg_advisory_unlock(${PRISMA_LOCK_KEY})`);
    holder.release();
    const results = await runs;

    expect(results.flatMap((result) => result.applied).sort()).toEqual(['001_a', '002_b', '003_c']);
    for (const result of results) {
      expect([...result.applied, ...result.alreadyApplied].sort()).toEqual(['001_a', '002_b', '003_c']);
    }
    expect((await rows(first)).map((row) => row.migration_name)).toEqual(['001_a', '002_b', '003_c']);
  });

  it('gives up waiting for a lock another process holds after the database timeout, naming the lock', async () => {
    const dir = await migrationsDir({ '001_a': 'CREATE TABLE a (id int);' });
    const holder = await admin.connect();
    await holder.query(`SELECT pg_advisory_lock(${PRISMA_LOCK_KEY})`);
    const handle = connectDatabase(database.url, { timeoutMs: 300 });
    try {
      const error = await applyMigrations(handle.pool, { migrationsDir: dir }).catch((err: unknown) => err);

      expect(error).toBeInstanceOf(MigrationError);
      expect((error as Error).message).toMatch(
        new RegExp(`^gave up waiting for the migration lock \\(PostgreSQL advisory lock ${PRISMA_LOCK_KEY}\\).*DATABASE_TIMEOUT_MS`),
      );
      // The session that waited is dropped: it could still be granted the lock and hold it for good.
      expect(handle.pool.totalCount).toBe(0);
    } finally {
      await holder.query(`SELECT pg_advisory_unlock(${PRISMA_LOCK_KEY})`);
      holder.release();
      await handle.close();
    }
  });

  it('rolls back a broken migration, records nothing for it and names it in the error', async () => {
    const pool = newPool(await isolatedSchema());
    const dir = await migrationsDir({
      '001_good': 'CREATE TABLE good (id int);',
      '002_broken': 'CREATE TABLE half_done (id int);\nINSERT INTO missing_table VALUES (1);',
      '003_later': 'CREATE TABLE later (id int);',
    });

    const error = await applyMigrations(pool, { migrationsDir: dir }).catch((err: unknown) => err);

    expect(error).toBeInstanceOf(MigrationError);
    expect((error as Error).message).toContain('002_broken');
    expect((error as Error).message).toContain('relation "missing_table" does not exist');
    expect(await tableExists(pool, 'good')).toBe(true);
    expect(await tableExists(pool, 'half_done')).toBe(false);
    expect(await tableExists(pool, 'later')).toBe(false);
    expect((await rows(pool)).map((row) => row.migration_name)).toEqual(['001_good']);
  });

  it('refuses to go on while Prisma has a migration recorded as failed', async () => {
    const pool = newPool(await isolatedSchema());
    const dir = await migrationsDir({
      '001_first': 'CREATE TABLE first (id int);',
      '002_next': 'CREATE TABLE next (id int);',
    });
    await pool.query(PRISMA_TABLE);
    // What Prisma leaves behind when a migration's script fails halfway.
    await pool.query(
      `INSERT INTO "_prisma_migrations" (id, checksum, migration_name, logs)
       VALUES (gen_random_uuid(), $1, '001_first', 'Database error: boom')`,
      [sha256('CREATE TABLE first (id int);')],
    );

    const error = await applyMigrations(pool, { migrationsDir: dir }).catch((err: unknown) => err);

    expect(error).toBeInstanceOf(MigrationError);
    expect((error as Error).message).toMatch(/001_first.*resolve/);
    expect(await tableExists(pool, 'first')).toBe(false);
    expect(await tableExists(pool, 'next')).toBe(false);
    expect(await rows(pool)).toHaveLength(1);
  });

  it('applies again a migration whose failed row was resolved as rolled back', async () => {
    const pool = newPool(await isolatedSchema());
    const sql = 'CREATE TABLE retried (id int);';
    const dir = await migrationsDir({ '001_retried': sql });
    await pool.query(PRISMA_TABLE);
    await pool.query(
      `INSERT INTO "_prisma_migrations" (id, checksum, migration_name, logs, rolled_back_at)
       VALUES (gen_random_uuid(), $1, '001_retried', 'error: boom', now())`,
      [sha256(sql)],
    );

    const result = await applyMigrations(pool, { migrationsDir: dir });

    expect(result.applied).toEqual(['001_retried']);
    expect(await tableExists(pool, 'retried')).toBe(true);
    const recorded = await rows(pool);
    expect(recorded.filter((row) => row.finished_at !== null && row.rolled_back_at === null)).toHaveLength(1);
  });

  it('accepts a database Prisma migrated and applies only what it has not', async () => {
    const pool = newPool(await isolatedSchema());
    const firstSql = 'CREATE TABLE by_prisma (id int);\r\n';
    const dir = await migrationsDir({ '001_by_prisma': firstSql, '002_ours': 'CREATE TABLE ours (id int);' });
    await pool.query('CREATE TABLE by_prisma (id int)');
    await pool.query(PRISMA_TABLE);
    // Recorded from a checkout with Unix line endings; the file here has Windows ones, which Prisma accepts.
    await pool.query(
      `INSERT INTO "_prisma_migrations" (id, checksum, migration_name, finished_at, applied_steps_count)
       VALUES (gen_random_uuid(), $1, '001_by_prisma', now(), 1)`,
      [sha256(firstSql.replaceAll('\r\n', '\n'))],
    );
    const { logger, atLeast } = capturingLogger();

    const result = await applyMigrations(pool, { migrationsDir: dir, logger });

    expect(result).toEqual({ applied: ['002_ours'], alreadyApplied: ['001_by_prisma'] });
    expect(await tableExists(pool, 'ours')).toBe(true);
    expect(atLeast('warn')).toEqual([]);
    expect(atLeast('info')).toEqual([expect.objectContaining({ migration: '002_ours', msg: 'applied migration' })]);
  });

  it('only warns when an applied migration was edited afterwards', async () => {
    const pool = newPool(await isolatedSchema());
    const dir = await migrationsDir({ '001_edited': 'CREATE TABLE edited (id int);' });
    await applyMigrations(pool, { migrationsDir: dir });
    await writeFile(join(dir, '001_edited', 'migration.sql'), 'CREATE TABLE edited (id bigint);');
    const { logger, atLeast } = capturingLogger();

    const result = await applyMigrations(pool, { migrationsDir: dir, logger });

    expect(result).toEqual({ applied: [], alreadyApplied: ['001_edited'] });
    expect(atLeast('warn')).toEqual([expect.objectContaining({ migration: '001_edited' })]);
  });

  it('warns about a recorded migration that has no folder here and carries on', async () => {
    const schema = await isolatedSchema();
    const pool = newPool(schema);
    const newer = await migrationsDir({
      '001_base': 'CREATE TABLE base (id int);',
      '002_newer': 'CREATE TABLE newer (id int);',
    });
    const older = await migrationsDir({ '001_base': 'CREATE TABLE base (id int);' });
    await applyMigrations(pool, { migrationsDir: newer });
    const { logger, atLeast } = capturingLogger();

    const result = await applyMigrations(pool, { migrationsDir: older, logger });

    expect(result).toEqual({ applied: [], alreadyApplied: ['001_base'] });
    expect(atLeast('warn')).toEqual([expect.objectContaining({ migration: '002_newer' })]);
  });

  it('returns its connection and the lock even when a migration fails', async () => {
    const pool = newPool(await isolatedSchema());
    const dir = await migrationsDir({ '001_broken': 'SELECT * FROM nowhere;' });

    await expect(applyMigrations(pool, { migrationsDir: dir })).rejects.toThrow(MigrationError);

    expect(pool.idleCount).toBe(pool.totalCount);
    const other = await admin.connect();
    const { rows: locked } = await other.query<{ ok: boolean }>(
      `SELECT pg_try_advisory_lock(${PRISMA_LOCK_KEY}) AS ok`,
    );
    expect(locked[0]?.ok).toBe(true);
    await other.query(`SELECT pg_advisory_unlock(${PRISMA_LOCK_KEY})`);
    other.release();
  });
});
