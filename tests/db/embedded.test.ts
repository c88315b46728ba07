import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectDatabase, type DatabaseHandle } from '../../src/db/client.js';
import { EmbeddedDatabaseError, startEmbeddedDatabase, type EmbeddedDatabase } from '../../src/db/embedded.js';
import { applyMigrations } from '../../src/db/migrate.js';
import { RecordStore, type RecordUpdate } from '../../src/db/record-store.js';
import type { StoredRecord } from '../../src/record/model.js';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const EMBEDDED_MODULE = fileURLToPath(new URL('../../src/db/embedded.ts', import.meta.url));
/** Every migration of the repository, in the order their names sort in. */
const MIGRATIONS = (await readdir(join(REPO_ROOT, 'prisma', 'migrations'), { withFileTypes: true }))
  .filter((entry) => entry.isDirectory())
  .map((entry) => entry.name)
  .sort();
const SAVED_AT = new Date('2026-11-20T08:00:00.000Z');

let root: string;
// The tests below run in order on one DATA_DIR: each later one reopens what the earlier ones wrote.
let dataDir: string;
/** Killed after the tests too, so that a test timing out does not leave one running. */
const instances = new Set<ChildProcess>();

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'ipenrich-embedded-'));
  dataDir = join(root, 'nested', 'data');
});

afterAll(async () => {
  for (const instance of instances) instance.kill('SIGKILL');
  await rm(root, { recursive: true, force: true });
});

function capturingLogger() {
  const lines: { level: number; msg: string }[] = [];
  const logger = pino(
    { level: 'info' },
    { write: (line: string) => void lines.push(JSON.parse(line) as (typeof lines)[number]) },
  );
  return { logger, warnings: () => lines.filter((line) => line.level >= pino.levels.values.warn!) };
}

const ipOf = (i: number) =>
  i % 4 === 0 ? `2001:db8::${i.toString(16)}` : `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`;

/** Every source kind and status the store distinguishes, spread over the addresses. */
function updateFor(i: number): RecordUpdate {
  const fetchedAt = new Date(Date.UTC(2026, 10, 1) + i * 1000).toISOString();
  const asn = {
    number: 64_512 + i,
    numbers: [64_512 + i],
    name: `AS ${i}`,
    prefix: '10.0.0.0/8',
    country: 'NL',
    registry: 'ripencc',
    allocated: '2001-01-01',
    source: 'cymru' as const,
  };
  const update: RecordUpdate = {
    ip: ipOf(i),
    lookups: 1,
    sources: {
      maxmind: {
        status: 'ok',
        fetchedAt,
        database: 'GeoLite2-City 2026-11-01',
        data: {
          geo: {
            country: 'NL',
            countryName: 'Netherlands',
            city: i % 2 ? 'Amsterdam' : null,
            latitude: 52.37,
            longitude: 4.89,
            accuracyRadius: 20,
            timezone: 'Europe/Amsterdam',
          },
          asn: null,
        },
      },
    },
  };
  if (i % 2 === 0) update.sources.cymru = { status: 'ok', fetchedAt, data: asn };
  if (i % 3 === 0) update.sources.greynoise = { status: 'not_found', fetchedAt, data: null };
  if (i % 5 === 0) update.sources.dshield = { status: 'unsupported', fetchedAt, data: null };
  return update;
}

function expectedRecord(update: RecordUpdate): StoredRecord {
  const { maxmind = null, cymru = null, greynoise = null, dshield = null } = update.sources;
  return { ip: update.ip, sources: { maxmind, cymru, greynoise, dshield }, updatedAt: SAVED_AT.toISOString() };
}

const UPDATES = Array.from({ length: 1000 }, (_, i) => updateFor(i));
const EXPECTED = new Map(UPDATES.map((update) => [update.ip, expectedRecord(update)]));

async function withDatabase<T>(
  embedded: EmbeddedDatabase,
  use: (db: DatabaseHandle, store: RecordStore) => Promise<T>,
): Promise<T> {
  const db = connectDatabase(embedded.url, { maxConnections: embedded.maxConnections });
  try {
    return await use(db, new RecordStore(db));
  } finally {
    await db.close();
  }
}

/** Starts an instance in another process and kills it, as a crash or `kill -9` would, once it has written. */
async function killInstanceAfterWrite(ip: string): Promise<void> {
  const script = `
    import pg from 'pg';
    const { startEmbeddedDatabase } = await import(process.argv[1]);
    const embedded = await startEmbeddedDatabase(process.argv[2]);
    const client = new pg.Client({ connectionString: embedded.url });
    await client.connect();
    await client.query('INSERT INTO ip_record (ip) VALUES ($1)', [process.argv[3]]);
    process.stdout.write('written\\n');
    setInterval(() => undefined, 1000);`;
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--input-type=module', '-e', script, EMBEDDED_MODULE, dataDir, ip],
    { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  instances.add(child);
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      instances.delete(child);
      resolve();
    }),
  );
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('written')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`instance exited (${String(code)}) before writing: ${stderr}`)));
  });
  child.kill('SIGKILL');
  await exited;
}

describe('embedded PostgreSQL (PGlite)', () => {
  it('boots in an empty DATA_DIR, applies the migrations and round-trips 1,000 records through Prisma', async () => {
    const embedded = await startEmbeddedDatabase(dataDir);
    try {
      expect(embedded.url).toMatch(/^postgresql:\/\/postgres@127\.0\.0\.1:\d+\/postgres$/);
      await withDatabase(embedded, async (db, store) => {
        expect(await applyMigrations(db.pool)).toEqual({ applied: MIGRATIONS, alreadyApplied: [] });
        expect(await db.prisma.ipRecord.count()).toBe(0);

        await store.save(UPDATES, SAVED_AT);

        const loaded = await store.load([...EXPECTED.keys(), '192.0.2.1']);
        expect(loaded).toEqual(EXPECTED);
        expect(await db.prisma.ipRecord.count()).toBe(1000);
      });
    } finally {
      await embedded.close();
    }
  });

  it('keeps the records across a restart, with no migration left to apply', async () => {
    const embedded = await startEmbeddedDatabase(dataDir);
    try {
      await withDatabase(embedded, async (db, store) => {
        expect(await applyMigrations(db.pool)).toEqual({ applied: [], alreadyApplied: MIGRATIONS });
        expect(await store.load([...EXPECTED.keys()])).toEqual(EXPECTED);
      });
    } finally {
      await embedded.close();
    }
  });

  it('refuses a DATA_DIR held by a running instance, naming it, and leaves that instance serving', async () => {
    const embedded = await startEmbeddedDatabase(dataDir);
    try {
      const second = startEmbeddedDatabase(dataDir);
      await expect(second).rejects.toThrow(EmbeddedDatabaseError);
      await expect(second).rejects.toThrow(`DATA_DIR ${dataDir} is in use`);
      await withDatabase(embedded, async (db) => {
        expect(await db.prisma.ipRecord.count()).toBe(1000);
      });
    } finally {
      await embedded.close();
    }
  });

  it('takes over the DATA_DIR of a killed instance, keeping what that instance committed', async () => {
    await killInstanceAfterWrite('198.51.100.7');
    const { logger, warnings } = capturingLogger();

    const embedded = await startEmbeddedDatabase(dataDir, { logger });
    try {
      expect(warnings().map((line) => line.msg)).toEqual([expect.stringContaining('did not shut down cleanly')]);
      await withDatabase(embedded, async (db) => {
        expect(await db.prisma.ipRecord.findUnique({ where: { ip: '198.51.100.7' } })).not.toBeNull();
        expect(await db.prisma.ipRecord.count()).toBe(1001);
      });
    } finally {
      await embedded.close();
    }
  });

  it('serves queries queued behind a busy connection and replaces a connection the pool dropped', async () => {
    const embedded = await startEmbeddedDatabase(dataDir);
    try {
      await withDatabase(embedded, async (db, store) => {
        const ips = [...EXPECTED.keys()];
        // A multi-megabyte save holds the only connection while the loads queue behind it in the pool.
        const big = Array.from({ length: 5000 }, (_, i) => updateFor(10_000 + i));
        const loads = ips.slice(0, 100).map((ip) => store.load([ip]));
        const [, ...loaded] = await Promise.all([store.save(big, SAVED_AT), ...loads]);
        expect(loaded.map((found) => [...found.values()])).toEqual(
          ips.slice(0, 100).map((ip) => [EXPECTED.get(ip)]),
        );

        for (let i = 0; i < 20; i++) {
          const client = await db.pool.connect();
          client.release(true);
          expect(await db.prisma.ipRecord.count()).toBe(6001);
        }
      });
    } finally {
      await embedded.close();
    }
  });

  it('reports a DATA_DIR it cannot open, naming it, and does not keep it locked', async () => {
    const broken = join(root, 'broken');
    await mkdir(broken);
    await writeFile(join(broken, 'pgdata'), 'a file where the database directory should be');

    for (let attempt = 0; attempt < 2; attempt++) {
      const started = startEmbeddedDatabase(broken);
      await expect(started).rejects.toThrow(EmbeddedDatabaseError);
      await expect(started).rejects.toThrow(`could not open the embedded database in DATA_DIR ${broken}`);
    }
  });
});
