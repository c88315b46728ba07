import { LRUCache } from 'lru-cache';
import type { ApiKey, KeyStore } from './key-store.js';
import { hashToken } from './tokens.js';

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
 * The keys of recent requests, so that a known key costs no database round trip: an entry is used as it is
 * for RECHECK_MS, then checked again in the background while it keeps answering, so that a busy key never
 * waits for the database either. Tokens nobody holds are remembered too (as null), so a client retrying a
 * revoked key does not reach the database on each attempt.
 *
 * Entries are found by the token as the request carries it: hashing it on every request (SHA-256, about
 * 1.7 µs here) was a measurable share of a cached GET /ip/:addr. The token is hashed only to ask the
 * database, and stays in this process's memory only while its entry does, as it is in each request's headers.
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

  /** The key, when the cache holds a decision about this token; undefined when the database must be asked. */
  peek(token: string): ApiKey | null | undefined {
    const entry = this.#entries.get(token);
    if (!entry) return undefined;
    if (this.now() - entry.checkedAt >= RECHECK_MS) void this.#check(token).catch(() => undefined);
    if (entry.key) this.#used.add(entry.key.id);
    return entry.key;
  }

  /** Asks the database (once for concurrent requests with the same token). */
  async resolve(token: string): Promise<ApiKey | null> {
    const key = await this.#check(token);
    if (key) this.#used.add(key.id);
    return key;
  }

  /** Drops a key at once (its revocation was broadcast). */
  forget(keyId: string): void {
    for (const [token, entry] of this.#entries.entries()) if (entry.key?.id === keyId) this.#entries.delete(token);
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

  #check(token: string): Promise<ApiKey | null> {
    let pending = this.#checking.get(token);
    if (!pending) {
      pending = this.store.findActive(hashToken(token)).then((key) => {
        this.#entries.set(token, { key, checkedAt: this.now() });
        return key;
      });
      pending.finally(() => this.#checking.delete(token)).catch(() => undefined);
      this.#checking.set(token, pending);
    }
    return pending;
  }
}
