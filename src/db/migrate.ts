import { createHash, randomUUID } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyBaseLogger } from 'fastify';
import type pg from 'pg';
import { errorMessage } from '../errors/message.js';

/**
 * The key Prisma's schema engine locks on, so that replicas booting together and a `prisma migrate deploy`
 * run elsewhere all take turns instead of racing over the same migrations.
 */
const PRISMA_ADVISORY_LOCK_KEY = 72707369;

// src/db and dist/db both sit two levels below the repository root, so this resolves under tsx and after tsc.
const DEFAULT_MIGRATIONS_DIR = fileURLToPath(new URL('../../prisma/migrations', import.meta.url));

// Prisma's own definition, so that its CLI reads and extends this table as if it had created it.
const CREATE_MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id" VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum" VARCHAR(64) NOT NULL,
    "finished_at" TIMESTAMPTZ,
    "migration_name" VARCHAR(255) NOT NULL,
    "logs" TEXT,
    "rolled_back_at" TIMESTAMPTZ,
    "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count" INTEGER NOT NULL DEFAULT 0
)`;

export interface MigrationResult {
  applied: string[];
  alreadyApplied: string[];
}

export class MigrationError extends Error {
  override name = 'MigrationError';
}

interface MigrationFile {
  name: string;
  sql: string;
  checksum: string;
}

interface MigrationRow {
  migration_name: string;
  checksum: string;
  finished_at: Date | null;
  rolled_back_at: Date | null;
}

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

/** Like Prisma, a checkout that only changed line endings (git on Windows) is not an edited migration. */
function checksumMatches(sql: string, checksum: string): boolean {
  return [sql, sql.replaceAll('\r\n', '\n'), sql.replaceAll('\n', '\r\n')].some((s) => sha256(s) === checksum);
}

const isMissing = (err: unknown) => (err as NodeJS.ErrnoException).code === 'ENOENT';

async function readMigrations(dir: string): Promise<MigrationFile[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if (isMissing(err)) throw new MigrationError(`migrations folder ${dir} does not exist`, { cause: err });
    throw err;
  }
  const names = entries
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return Promise.all(
    names.map(async (name) => {
      const path = join(dir, name, 'migration.sql');
      let bytes: Buffer;
      try {
        bytes = await readFile(path);
      } catch (err) {
        if (isMissing(err)) throw new MigrationError(`migration ${name} has no ${path}`, { cause: err });
        throw err;
      }
      return { name, sql: bytes.toString('utf8'), checksum: sha256(bytes) };
    }),
  );
}

async function acquireLock(client: pg.PoolClient, logger: FastifyBaseLogger | undefined): Promise<void> {
  const { rows } = await client.query<{ locked: boolean }>(
    `SELECT pg_try_advisory_lock(${PRISMA_ADVISORY_LOCK_KEY}) AS locked`,
  );
  if (rows[0]?.locked) return;
  logger?.info('waiting for another process to finish migrating the database');
  try {
    await client.query(`SELECT pg_advisory_lock(${PRISMA_ADVISORY_LOCK_KEY})`);
  } catch (err) {
    throw new MigrationError(
      `gave up waiting for the migration lock (PostgreSQL advisory lock ${PRISMA_ADVISORY_LOCK_KEY}), which another ` +
        `process holds while it migrates this database: ${errorMessage(err)}; start again once it has finished, ` +
        'or raise DATABASE_TIMEOUT_MS, which bounds the wait',
      { cause: err },
    );
  }
}

/** False when the lock could not be released, so the caller must drop the connection that still holds it. */
async function releaseLock(client: pg.PoolClient, logger: FastifyBaseLogger | undefined): Promise<boolean> {
  try {
    const { rows } = await client.query<{ unlocked: boolean }>(
      `SELECT pg_advisory_unlock(${PRISMA_ADVISORY_LOCK_KEY}) AS unlocked`,
    );
    return rows[0]?.unlocked === true;
  } catch (err) {
    logger?.warn({ err }, 'could not release the migration lock; closing its connection instead');
    return false;
  }
}

async function applyOne(client: pg.PoolClient, migration: MigrationFile): Promise<void> {
  const id = randomUUID();
  try {
    await client.query('BEGIN');
    await client.query(
      'INSERT INTO "_prisma_migrations" ("id", "checksum", "migration_name", "started_at") VALUES ($1, $2, $3, now())',
      [id, migration.checksum, migration.name],
    );
    await client.query(migration.sql);
    // clock_timestamp, not now(): inside the transaction now() would still be the start time.
    await client.query(
      'UPDATE "_prisma_migrations" SET "finished_at" = clock_timestamp(), "applied_steps_count" = 1 WHERE "id" = $1',
      [id],
    );
    await client.query('COMMIT');
  } catch (err) {
    // A ROLLBACK that fails means the connection is gone, and PostgreSQL rolls back a dead session's transaction.
    await client.query('ROLLBACK').catch(() => undefined);
    throw new MigrationError(`migration ${migration.name} failed and was rolled back: ${errorMessage(err)}`, { cause: err });
  }
}

async function migrate(
  client: pg.PoolClient,
  migrations: MigrationFile[],
  logger: FastifyBaseLogger | undefined,
): Promise<MigrationResult> {
  // Only when missing: CREATE TABLE IF NOT EXISTS needs the right to create even when the table is there, and
  // a service migrated beforehand (`ip-enrich migrate`) may run as a role that only reads and writes rows.
  const { rows: [table] } = await client.query<{ found: string | null }>(`SELECT to_regclass('"_prisma_migrations"')::text AS found`);
  if (!table?.found) await client.query(CREATE_MIGRATIONS_TABLE);
  const { rows } = await client.query<MigrationRow>(
    'SELECT "migration_name", "checksum", "finished_at", "rolled_back_at" FROM "_prisma_migrations"',
  );
  // Rows marked rolled back were resolved with `prisma migrate resolve --rolled-back` and no longer count.
  const current = rows.filter((row) => row.rolled_back_at === null);

  const failed = current.filter((row) => row.finished_at === null).map((row) => row.migration_name);
  if (failed.length > 0) {
    throw new MigrationError(
      `migration ${failed.join(', ')} failed earlier and is unresolved, so no migration was applied; ` +
        'resolve it with `prisma migrate resolve --rolled-back <name>` after undoing its changes, ' +
        'or `prisma migrate resolve --applied <name>` after completing it by hand',
    );
  }

  const checksums = new Map<string, string[]>();
  for (const row of current) {
    checksums.set(row.migration_name, [...(checksums.get(row.migration_name) ?? []), row.checksum]);
  }

  const onDisk = new Set(migrations.map((migration) => migration.name));
  for (const name of checksums.keys()) {
    if (!onDisk.has(name)) {
      logger?.warn({ migration: name }, 'database has a migration this release lacks (applied by a newer one?)');
    }
  }

  const result: MigrationResult = { applied: [], alreadyApplied: [] };
  for (const migration of migrations) {
    const recorded = checksums.get(migration.name);
    if (recorded) {
      if (!recorded.some((checksum) => checksumMatches(migration.sql, checksum))) {
        logger?.warn({ migration: migration.name }, 'migration was edited after it was applied; edit not applied');
      }
      result.alreadyApplied.push(migration.name);
      continue;
    }
    await applyOne(client, migration);
    logger?.info({ migration: migration.name }, 'applied migration');
    result.applied.push(migration.name);
  }
  if (result.applied.length === 0) logger?.debug('database schema is up to date');
  return result;
}

/**
 * Applies the pending Prisma-layout migrations, keeping `_prisma_migrations` exactly as `prisma migrate deploy`
 * would, so either can take over from the other. The pool's timeouts bound every statement and the wait for
 * another process's lock, so a database that stops answering fails the boot instead of stalling it.
 */
export async function applyMigrations(
  pool: pg.Pool,
  options: { migrationsDir?: string; logger?: FastifyBaseLogger } = {},
): Promise<MigrationResult> {
  const { logger } = options;
  const migrations = await readMigrations(options.migrationsDir ?? DEFAULT_MIGRATIONS_DIR);
  // One connection throughout: a session advisory lock belongs to the connection that took it.
  const client = await pool.connect();
  // Until its lock is released the session is dropped, never pooled: one whose wait for the lock failed may
  // still be granted it later and would then keep every other process from migrating.
  let reusable = false;
  try {
    await acquireLock(client, logger);
    try {
      return await migrate(client, migrations, logger);
    } finally {
      reusable = await releaseLock(client, logger);
    }
  } finally {
    client.release(!reusable);
  }
}
