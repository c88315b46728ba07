import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publishInvalidation } from '../../src/auth/invalidation.js';
import { KeyStore } from '../../src/auth/key-store.js';
import type { Config } from '../../src/config.js';
import { startHarness, type Harness } from '../support/app.js';
import { asKey, createKey, expectProblem } from './support.js';

const ADDRESS = '81.2.69.1';

async function eventually(check: () => Promise<boolean> | boolean, ms: number): Promise<void> {
  const started = performance.now();
  while (performance.now() - started < ms) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`not within ${ms} ms`);
}

/** Two replicas on one database (and one Redis when `shared` names it), as docker compose runs them. */
function replicas(name: string, shared: () => Partial<Config>) {
  const state: { a?: Harness; b?: Harness } = {};
  beforeAll(async () => {
    state.a = await startHarness({ config: { AUTH: 'keys', ...shared() } });
    state.b = await startHarness({ database: state.a.database, config: { AUTH: 'keys', ...shared() } });
  });
  afterAll(async () => {
    await state.b?.close();
    await state.a?.close();
  });

  describe(name, () => {
    it("refuses a revoked key on every replica within two seconds, sooner than the key cache's recheck", async () => {
      const { a, b } = state as Required<typeof state>;
      const key = await createKey(a.app, { name: 'replicated', scopes: ['lookup'] });
      expect((await asKey(b.app, key.token, { method: 'GET', url: '/ip/10.0.0.1' })).statusCode).toBe(200);
      const store = new KeyStore(a.app.database);
      await store.revoke(key.id, new Date());
      // As `ip-enrich keys revoke` tells them: from outside every replica.
      const config = a.config;
      const redis = config.REDIS_URL ? new Redis(config.REDIS_URL) : undefined;
      try {
        await publishInvalidation(redis ? { redis, keyPrefix: config.REDIS_KEY_PREFIX } : { pool: a.app.database.pool }, { kind: 'key-revoked', keyId: key.id });
      } finally {
        redis?.disconnect();
      }
      await eventually(async () => (await asKey(b.app, key.token, { method: 'GET', url: '/ip/10.0.0.1' })).statusCode === 401, 2000);
      expectProblem(await asKey(b.app, key.token, { method: 'GET', url: '/ip/10.0.0.1' }), 401, 'unauthorized');
    });

    it('DELETE /ip/{addr} removes the record from PostgreSQL and every replica\'s L1, local copies included', async () => {
      const { a, b } = state as Required<typeof state>;
      const admin = await createKey(a.app, { name: 'admin', scopes: ['admin'] });
      expect((await asKey(b.app, admin.token, { method: 'GET', url: `/ip/${ADDRESS}` })).statusCode).toBe(200);
      expect(b.app.tiers.l1.peek(ADDRESS)).toBeDefined();
      // B writes its records to Redis behind its answers; A finds the address there once that write is done.
      if (a.config.REDIS_URL) await eventually(async () => (await a.app.tiers.l1.getMany([ADDRESS])).has(ADDRESS), 2000);
      const asked = b.greynoise.requests.length;

      const deleted = await asKey(a.app, admin.token, { method: 'DELETE', url: `/ip/${ADDRESS}` });
      expect(deleted.statusCode).toBe(200);
      // The answer speaks for this replica's L1: Redis holds B's entry for A too, an in-process LRU does not.
      expect(deleted.json()).toEqual({ ip: ADDRESS, database: true, cache: a.config.REDIS_URL !== undefined });
      await eventually(() => b.app.tiers.l1.peek(ADDRESS) === undefined, 2000);
      expect(await a.app.records.load([ADDRESS])).toEqual(new Map());

      const again = await asKey(b.app, admin.token, { method: 'GET', url: `/ip/${ADDRESS}` });
      expect(again.statusCode).toBe(200);
      expect(b.greynoise.requests.length).toBe(asked + 1);
      const nothing = await asKey(a.app, admin.token, { method: 'DELETE', url: '/ip/192.0.2.77' });
      expect(nothing.json()).toEqual({ ip: '192.0.2.77', database: false, cache: false });
    });
  });
}

const prefix = `ipenrich-test:${randomBytes(6).toString('hex')}:`;
replicas('with Redis (pub/sub)', () => ({ REDIS_URL: 'redis://127.0.0.1:6379', REDIS_KEY_PREFIX: prefix }));
replicas('without Redis (PostgreSQL LISTEN/NOTIFY)', () => ({ REDIS_URL: undefined }));
