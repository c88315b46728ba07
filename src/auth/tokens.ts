import { createHash, randomBytes } from 'node:crypto';

export const SCOPES = ['lookup', 'enrich', 'jobs', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

/** What a route asks of a request: a key's scope, or the METRICS_TOKEN for /metrics. */
export type RouteScope = Scope | 'metrics';

/** `ipe_` + 8 characters of public prefix + `_` + 43 characters (256 bits) of secret, all base64url. */
const TOKEN = /^ipe_([A-Za-z0-9_-]{8})_[A-Za-z0-9_-]{43}$/;

export interface NewToken {
  token: string;
  prefix: string;
  hash: string;
}

/** SHA-256 of the whole token: the only form in which a key is stored, and the key of the key cache. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/**
 * A new random token. The prefix names the key in lists and logs without giving it away; the secret part
 * alone has 256 bits, so a plain SHA-256 is enough to store it (no password stretching is needed for a
 * value nobody chose).
 */
export function newToken(): NewToken {
  const prefix = `ipe_${randomBytes(6).toString('base64url')}`;
  const token = `${prefix}_${randomBytes(32).toString('base64url')}`;
  return { token, prefix, hash: hashToken(token) };
}

/** Whether a string has the shape of a token (so that a mistyped one is told apart from an unknown one). */
export function looksLikeToken(value: string): boolean {
  return TOKEN.test(value);
}

export function parseScopes(value: string): Scope[] {
  const names = value.split(',').map((name) => name.trim()).filter(Boolean);
  const unknown = names.filter((name) => !(SCOPES as readonly string[]).includes(name));
  if (unknown.length > 0 || names.length === 0) throw new Error(`expected a comma-separated list of ${SCOPES.join(', ')}`);
  return [...new Set(names)] as Scope[];
}

/** A limit written `N/unit` (`600/min`, `200000/day`), as a count per that unit. */
export function parseLimit(value: string, unit: 'min' | 'day'): number {
  const match = new RegExp(`^\\s*([1-9]\\d{0,9})\\s*(?:/\\s*${unit})?\\s*$`).exec(value);
  const count = match ? Number(match[1]) : NaN;
  if (!Number.isSafeInteger(count) || count > 2_000_000_000) throw new Error(`expected a count per ${unit}, like 600/${unit}`);
  return count;
}
