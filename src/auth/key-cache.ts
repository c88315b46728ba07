import { LRUCache } from 'lru-cache';
import type { ApiKey, KeyStore } from './key-store.js';

/** Keys held at once: far more than any deployment has, and a few MB at most. */
const MAX_KEYS = 10_000;
/**
 * How long a key is answered from the cache before the database is asked again. This bounds how long a
 * revocation takes to reach a replica that missed its broadcast (Redis down, or no Redis at all); the
 * broadcast itself clears a key at once.
 */
export const RECHECK_MS = 5000;
/** last_used_at is written for all keys used in this interval in one statement, never once per request. */
const TOUCH_MS = 10_000;

interface Entry {
  /** null: no active key has this token (unknown or revoked). */
  key: ApiKey | null;
  checkedAt: number;
}

/**
 * The keys of recent requests by token hash, so that a known key costs no database round trip: an entry is
 * used as it is for RECHECK_MS, then checked again in the background while it keeps answering, so that a
 * busy key never waits for the database either. Tokens nobody holds are remembered too (as null), so a
 * client retrying a revoked key does not reach the database on each attempt.
 */
export class KeyCache {
  readonly #entries = new LRUCache<string, Entry>({ max: MAX_KEYS });
  readonly #checking = new Map<string, Promise<ApiKey | null>>();
  #used = new Set<string>();
  readonly #touch: NodeJS.Timeout;

  constructor(
    private readonly store: Pick<KeyStore, 'findActive' | 'touch'>,
    private readonly now: () => number,
    private readonly onTouchError: (error: unknown) => void,
  ) {
    this.#touch = setInterval(() => void this.flushUse(), TOUCH_MS).unref();
  }

  /** The key, when the cache holds a decision about this hash; undefined when the database must be asked. */
  peek(hash: string): ApiKey | null | undefined {
    const entry = this.#entries.get(hash);
    if (!entry) return undefined;
    if (this.now() - entry.checkedAt >= RECHECK_MS) void this.#check(hash).catch(() => undefined);
    if (entry.key) this.#used.add(entry.key.id);
    return entry.key;
  }

  /** Asks the database (once for concurrent requests with the same token). */
  async resolve(hash: string): Promise<ApiKey | null> {
    const key = await this.#check(hash);
    if (key) this.#used.add(key.id);
    return key;
  }

  /** Drops a key at once (its revocation was broadcast). */
  forget(keyId: string): void {
    for (const [hash, entry] of this.#entries.entries()) if (entry.key?.id === keyId) this.#entries.delete(hash);
  }

  async flushUse(): Promise<void> {
    const ids = [...this.#used];
    this.#used = new Set();
    await this.store.touch(ids, new Date(this.now())).catch(this.onTouchError);
  }

  async close(): Promise<void> {
    clearInterval(this.#touch);
    await this.flushUse();
  }

  #check(hash: string): Promise<ApiKey | null> {
    let pending = this.#checking.get(hash);
    if (!pending) {
      pending = this.store.findActive(hash).then((key) => {
        this.#entries.set(hash, { key, checkedAt: this.now() });
        return key;
      });
      pending.finally(() => this.#checking.delete(hash)).catch(() => undefined);
      this.#checking.set(hash, pending);
    }
    return pending;
  }
}
