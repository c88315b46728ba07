import { randomUUID } from 'node:crypto';
import type { DatabaseHandle } from '../db/client.js';
import { unavailableOnFailure } from '../db/record-store.js';
import type { ApiKey as ApiKeyRow } from '../generated/prisma/client.js';
import { newToken, type Scope } from './tokens.js';

/** A key as requests see it: never its token, nor its hash. */
export interface ApiKey {
  id: string;
  prefix: string;
  name: string;
  scopes: readonly Scope[];
  ratePerMinute: number | null;
  addressesPerDay: number | null;
}

export interface KeyListing extends ApiKey {
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

export interface KeySpec {
  name: string;
  scopes: readonly Scope[];
  ratePerMinute?: number | null;
  addressesPerDay?: number | null;
}

/** What a charge of addresses against a key's daily allowance found. */
export type Charge = { allowed: true; used: number } | { allowed: false; used: number };

const view = (row: ApiKeyRow): KeyListing => ({
  id: row.id,
  prefix: row.prefix,
  name: row.name,
  scopes: row.scopes as Scope[],
  ratePerMinute: row.ratePerMinute,
  addressesPerDay: row.addressesPerDay,
  createdAt: row.createdAt,
  lastUsedAt: row.lastUsedAt,
  revokedAt: row.revokedAt,
});

/** The API keys in PostgreSQL: created and revoked by the command line, read by the service. */
export class KeyStore {
  constructor(private readonly database: Pick<DatabaseHandle, 'prisma' | 'pool'>) {}

  /** Creates a key; the token is returned here and nowhere else, ever. */
  async create(spec: KeySpec, at: Date): Promise<{ key: KeyListing; token: string }> {
    const { token, prefix, hash } = newToken();
    const row = await this.database.prisma.apiKey.create({
      data: {
        id: randomUUID(),
        prefix,
        hash,
        name: spec.name,
        scopes: [...spec.scopes],
        ratePerMinute: spec.ratePerMinute ?? null,
        addressesPerDay: spec.addressesPerDay ?? null,
        createdAt: at,
      },
    });
    return { key: view(row), token };
  }

  async list(): Promise<KeyListing[]> {
    return (await this.database.prisma.apiKey.findMany({ orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] })).map(view);
  }

  /** Revokes the keys named by prefix, id or name; the ones it revoked (already revoked ones are not). */
  async revoke(which: string, at: Date): Promise<KeyListing[]> {
    const isId = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(which);
    const where = { revokedAt: null, OR: [{ prefix: which }, { name: which }, ...(isId ? [{ id: which }] : [])] };
    return this.database.prisma.$transaction(async (tx) => {
      const rows = await tx.apiKey.findMany({ where });
      await tx.apiKey.updateMany({ where: { id: { in: rows.map((row) => row.id) } }, data: { revokedAt: at } });
      return rows.map((row) => ({ ...view(row), revokedAt: at }));
    });
  }

  /** The key with this token hash, unless it is unknown or revoked. */
  async findActive(hash: string): Promise<ApiKey | null> {
    const row = await unavailableOnFailure(this.database.prisma.apiKey.findUnique({ where: { hash } }));
    if (!row || row.revokedAt) return null;
    const { id, prefix, name, scopes, ratePerMinute, addressesPerDay } = view(row);
    return { id, prefix, name, scopes, ratePerMinute, addressesPerDay };
  }

  /** Records when the keys were last used, for many at once (the cache collects them between writes). */
  async touch(ids: readonly string[], at: Date): Promise<void> {
    if (ids.length === 0) return;
    await this.database.pool.query('UPDATE api_key SET last_used_at = $2 WHERE id = ANY($1::uuid[]) AND (last_used_at IS NULL OR last_used_at < $2)', [
      ids,
      at,
    ]);
  }

  /**
   * Adds `count` addresses to the key's tally for `day` if it stays within `limit`, in one statement, so that
   * concurrent requests of one key on any replica never pass the limit together.
   */
  async charge(keyId: string, day: string, count: number, limit: number): Promise<Charge> {
    const { rows } = await unavailableOnFailure(
      this.database.pool.query<{ addresses: number }>(
        `INSERT INTO api_key_usage (key_id, day, addresses) SELECT $1::uuid, $2::date, $3::int WHERE $3::int <= $4::int
         ON CONFLICT (key_id, day) DO UPDATE SET addresses = api_key_usage.addresses + EXCLUDED.addresses
           WHERE api_key_usage.addresses + EXCLUDED.addresses <= $4::int
         RETURNING addresses`,
        [keyId, day, count, limit],
      ),
    );
    if (rows[0]) return { allowed: true, used: rows[0].addresses };
    const used = await this.database.pool.query<{ addresses: number }>('SELECT addresses FROM api_key_usage WHERE key_id = $1::uuid AND day = $2::date', [
      keyId,
      day,
    ]);
    return { allowed: false, used: used.rows[0]?.addresses ?? 0 };
  }

  /** The key that submitted a job: null for a job of no key, undefined when there is no such job. */
  async jobOwner(jobId: string): Promise<string | null | undefined> {
    const { rows } = await unavailableOnFailure(
      this.database.pool.query<{ owner_key_id: string | null }>('SELECT owner_key_id FROM enrichment_job WHERE id = $1::uuid', [jobId]),
    );
    return rows[0] ? rows[0].owner_key_id : undefined;
  }
}
