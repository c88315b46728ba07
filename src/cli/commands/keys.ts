import { Redis } from 'ioredis';
import { publishInvalidation } from '../../auth/invalidation.js';
import { RECHECK_MS } from '../../auth/key-cache.js';
import { KeyStore, type KeyListing } from '../../auth/key-store.js';
import type { Scope } from '../../auth/tokens.js';
import { withoutPassword, type Config } from '../../config.js';
import type { DatabaseHandle } from '../../db/client.js';
import { applyMigrations } from '../../db/migrate.js';
import { errorMessage } from '../../errors/message.js';
import { CliError, EXIT } from '../exit.js';
import { commandConfig, databaseName, withDatabase } from './service.js';

export interface CreateOptions {
  name: string;
  scopes: Scope[];
  rate?: number;
  addresses?: number;
}

/** The keys on the configured database, migrated first: keys may be made before the service ever started. */
async function onKeys<T>(config: Config, work: (store: KeyStore, handle: DatabaseHandle) => Promise<T>): Promise<T> {
  try {
    return await withDatabase(config, async (handle) => {
      await applyMigrations(handle.pool);
      return work(new KeyStore(handle), handle);
    });
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw new CliError(`${databaseName(config)}: ${errorMessage(error)}`, EXIT.failed);
  }
}

const limits = (key: Pick<KeyListing, 'ratePerMinute' | 'addressesPerDay'>) =>
  `${key.ratePerMinute === null ? 'no request limit' : `${key.ratePerMinute}/min`}, ${key.addressesPerDay === null ? 'no address limit' : `${key.addressesPerDay} addresses/day`}`;

/** `ip-enrich keys create`: the token goes to standard output, alone, so that a script can capture it. */
export async function keysCreate(options: CreateOptions): Promise<number> {
  const config = commandConfig();
  const { key, token } = await onKeys(config, (store) =>
    store.create({ name: options.name, scopes: options.scopes, ratePerMinute: options.rate, addressesPerDay: options.addresses }, new Date()),
  );
  process.stdout.write(`${token}\n`);
  process.stderr.write(
    `created key ${key.prefix} "${key.name}" (scopes ${key.scopes.join(',')}; ${limits(key)}). ` +
      'This is the only time the key is shown: it is stored as a hash.\n',
  );
  return EXIT.ok;
}

const time = (date: Date | null) => (date ? date.toISOString().replace(/\.\d{3}Z$/, 'Z') : '-');

/** `ip-enrich keys list`: every key, revoked ones included, never a token (none is kept). */
export async function keysList(options: { json: boolean }): Promise<number> {
  const keys = await onKeys(commandConfig(), (store) => store.list());
  if (options.json) {
    process.stdout.write(`${JSON.stringify(keys, null, 2)}\n`);
    return EXIT.ok;
  }
  const rows = [
    ['PREFIX', 'NAME', 'SCOPES', 'REQUESTS/MIN', 'ADDRESSES/DAY', 'CREATED', 'LAST USED', 'REVOKED'],
    ...keys.map((key) => [
      key.prefix,
      key.name,
      key.scopes.join(','),
      key.ratePerMinute === null ? '-' : String(key.ratePerMinute),
      key.addressesPerDay === null ? '-' : String(key.addressesPerDay),
      time(key.createdAt),
      time(key.lastUsedAt),
      time(key.revokedAt),
    ]),
  ];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  for (const row of rows) process.stdout.write(`${row.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd()}\n`);
  return EXIT.ok;
}

/** Tells the running replicas at once; those it does not reach drop the key when they next check it. */
async function broadcastRevocation(config: Config, handle: DatabaseHandle, keyIds: readonly string[]): Promise<void> {
  const redis = config.REDIS_URL
    ? new Redis(config.REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 2000, retryStrategy: () => null })
    : undefined;
  redis?.on('error', () => undefined);
  try {
    await redis?.connect();
    for (const keyId of keyIds) {
      await publishInvalidation(redis ? { redis, keyPrefix: config.REDIS_KEY_PREFIX } : { pool: handle.pool }, { kind: 'key-revoked', keyId });
    }
  } catch (error) {
    const where = config.REDIS_URL ? `Redis at ${withoutPassword(config.REDIS_URL)}` : 'PostgreSQL';
    process.stderr.write(
      `could not tell the running replicas through ${where} (${errorMessage(error)}); each stops accepting the key within ${RECHECK_MS / 1000} s anyway\n`,
    );
  } finally {
    redis?.disconnect();
  }
}

/** `ip-enrich keys revoke`: by prefix, id or name; the key stays listed, marked revoked. */
export async function keysRevoke(which: string): Promise<number> {
  const config = commandConfig();
  const revoked = await onKeys(config, async (store, handle) => {
    const keys = await store.revoke(which, new Date());
    if (keys.length > 0) await broadcastRevocation(config, handle, keys.map((key) => key.id));
    return keys;
  });
  if (revoked.length === 0) throw new CliError(`no active key has the prefix, id or name ${JSON.stringify(which)} (see ip-enrich keys list)`, EXIT.usage);
  for (const key of revoked) process.stderr.write(`revoked key ${key.prefix} "${key.name}"\n`);
  return EXIT.ok;
}
