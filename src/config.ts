import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { StringEnum } from './schema.js';

const Integer = (defaultValue: number, minimum: number, maximum: number, description: string) =>
  Type.Integer({ default: defaultValue, minimum, maximum, description });

const HttpUrl = (defaultValue: string, description: string) =>
  Type.String({ default: defaultValue, pattern: '^https?://[^\\s]+$', description });

/** Durations accept plain seconds or a number with a unit: 90, 90s, 15m, 12h, 7d. */
const Duration = (defaultValue: string, description: string) =>
  Type.String({ default: defaultValue, pattern: '^\\d+(s|m|h|d)?$', description });

const OptionalPath = (description: string) => Type.Optional(Type.String({ minLength: 1, description }));

/**
 * A value the service sends in an HTTP header. undici refuses any header value outside Latin-1 (and control
 * characters) on every request, so such a value is stopped at boot; printable ASCII is the safe rule.
 */
const OptionalHeaderValue = (minLength: number, description: string) =>
  Type.Optional(
    Type.String({ minLength, pattern: '^[\\x20-\\x7E]+$', description: `${description} (printable ASCII: sent in an HTTP header)` }),
  );

/**
 * Every setting the service reads, keyed by its environment variable so that a rejected value is
 * reported under the exact name the operator has to fix.
 */
export const ConfigSchema = Type.Object({
  HOST: Type.String({ default: '127.0.0.1', minLength: 1, description: 'listen address' }),
  AUTH: Type.Optional(
    StringEnum(['off', 'keys'], {
      description: 'keys: every API request needs an API key; unset: off on a loopback HOST, keys on any other',
    }),
  ),
  METRICS_TOKEN: Type.Optional(
    Type.String({ minLength: 16, pattern: '^[\\x21-\\x7E]+$', description: 'a bearer token GET /metrics then requires (printable ASCII, no spaces)' }),
  ),
  CORS_ORIGINS: Type.Optional(
    Type.String({
      pattern: '^(\\*|https?://[^\\s,/]+(\\s*,\\s*https?://[^\\s,/]+)*)$',
      description: 'comma-separated origins (scheme://host[:port]) allowed to call the API from a browser, or *',
    }),
  ),
  RECORD_RETENTION: Type.String({
    default: 'off',
    pattern: '^(off|[1-9]\\d*(s|m|h|d)?)$',
    description: 'delete stored records neither seen nor looked up for this long; off: keep them',
  }),
  PORT: Integer(8080, 0, 65535, 'listen port'),
  LOG_LEVEL: StringEnum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
    default: 'info',
    description: 'pino log level',
  }),
  DATABASE_URL: Type.Optional(
    Type.String({ pattern: '^postgres(ql)?://', description: 'PostgreSQL connection string' }),
  ),
  DATABASE_TIMEOUT_MS: Integer(
    10_000,
    100,
    600_000,
    'how long to wait for PostgreSQL to connect or to answer one statement before answering 503',
  ),
  DATA_DIR: Type.String({ default: './data', minLength: 1, description: 'embedded database directory' }),
  REDIS_URL: Type.Optional(Type.String({ pattern: '^rediss?://', description: 'Redis connection string' })),
  REDIS_KEY_PREFIX: Type.String({ default: 'ipenrich:', description: 'prefix of every Redis key the service uses' }),
  MAXMIND_CITY_DB: OptionalPath('GeoLite2/GeoIP2 City .mmdb'),
  MAXMIND_ASN_DB: OptionalPath('GeoLite2/GeoIP2 ASN .mmdb'),
  CYMRU_WHOIS_HOST: Type.String({ default: 'whois.cymru.com', minLength: 1, description: 'bulk whois host' }),
  CYMRU_WHOIS_PORT: Integer(43, 1, 65535, 'bulk whois port'),
  CYMRU_BATCH_SIZE: Integer(500, 1, 500, 'addresses per bulk query'),
  CYMRU_MAX_CONNECTIONS: Integer(2, 1, 16, 'bulk queries in flight at once'),
  CYMRU_TIMEOUT_MS: Integer(30_000, 100, 600_000, 'per bulk query'),
  CYMRU_RETRIES: Integer(2, 0, 10, 'extra attempts for a failed bulk query'),
  ENRICH_MAX_IPS: Integer(10_000, 1, 1_000_000, 'largest list POST /enrich accepts'),
  ENRICH_DEADLINE_MS: Integer(10_000, 0, 600_000, 'how long a request may wait for rate-limited sources'),
  GREYNOISE_API_URL: HttpUrl('https://api.greynoise.io', 'GreyNoise API base URL'),
  GREYNOISE_API_KEY: OptionalHeaderValue(1, 'GreyNoise API key'),
  GREYNOISE_RATE: Type.Number({ default: 1, exclusiveMinimum: 0, maximum: 10_000, description: 'requests/s' }),
  GREYNOISE_BURST: Integer(5, 1, 10_000, 'token bucket size'),
  GREYNOISE_MAX_IN_FLIGHT: Integer(4, 1, 1024, 'GreyNoise requests in flight at once'),
  GREYNOISE_REPROBE: Duration('15m', 'after GreyNoise refused the API key, how long until one request tries it again'),
  DSHIELD_API_URL: HttpUrl('https://isc.sans.edu', 'DShield/ISC API base URL'),
  DSHIELD_CONTACT: OptionalHeaderValue(3, 'contact for the User-Agent'),
  DSHIELD_RATE: Type.Number({ default: 1, exclusiveMinimum: 0, maximum: 10_000, description: 'requests/s' }),
  DSHIELD_BURST: Integer(2, 1, 10_000, 'token bucket size'),
  DSHIELD_MAX_IN_FLIGHT: Integer(4, 1, 1024, 'DShield requests in flight at once'),
  L1_TTL_SECONDS: Integer(3600, 1, 31_536_000, 'Redis/LRU record TTL'),
  L1_MAX_ENTRIES: Integer(50_000, 1, 10_000_000, 'entries of the in-process LRU (L1 without Redis, local copy with it)'),
  L1_LOCAL_TTL_SECONDS: Integer(60, 0, 86_400, 'with Redis, how long a process-local copy of an L1 entry is used; 0: none'),
  TTL_CYMRU: Duration('7d', 'Team Cymru freshness'),
  TTL_GREYNOISE: Duration('1d', 'GreyNoise freshness'),
  TTL_DSHIELD: Duration('1d', 'DShield freshness'),
  ROLE: StringEnum(['all', 'api', 'worker'], {
    default: 'all',
    description: 'all: API, job worker and scheduler in one process; api: the HTTP API only; worker: jobs only',
  }),
  JOB_MAX_IPS: Integer(1_000_000, 1, 10_000_000, 'largest list POST /jobs accepts'),
  JOB_CONCURRENCY: Integer(1, 1, 64, 'jobs one worker process runs at once'),
  JOB_RETENTION: Duration('7d', 'how long a finished job and its inputs are kept (the records stay)'),
  JOB_SLICE_SECONDS: Integer(60, 1, 3600, 'how long a worker runs a job before handing it back to the queue'),
  JOB_LEASE_SECONDS: Integer(30, 2, 600, "a worker's claim on a running job, renewed while it works; past it the job resumes elsewhere"),
  REFRESH_SCHEDULE: Type.String({
    default: '0 */6 * * *',
    pattern: '^(off|\\S+( \\S+){4,5})$',
    description: 'cron (UTC) of the refresh of stale stored records; off: none',
  }),
  REFRESH_MAX_IPS: Integer(10_000, 1, 1_000_000, 'stored records one scheduled refresh takes at most'),
});

export type Config = Static<typeof ConfigSchema>;

/** Settings whose values are secret: a configuration error names them and what is wrong, never the value. */
const SECRET_SETTINGS = new Set(['GREYNOISE_API_KEY', 'METRICS_TOKEN']);
/** Connection strings, shown in an error without the password they may hold. */
const URL_SETTINGS = new Set(['DATABASE_URL', 'REDIS_URL']);

/**
 * A connection string without its password, for a log line or an error. It works on text that is not a
 * valid URL too (a mistyped scheme, `redis//:secret@host`), since those are the ones an error shows: in the
 * part before the last `@`, whatever follows the first `:` after the scheme is the password. A `password=`
 * parameter is hidden as well.
 */
export function withoutPassword(url: string): string {
  const hidden = url.replace(/([?&]password=)[^&]*/gi, '$1***');
  const at = hidden.lastIndexOf('@');
  if (at === -1) return hidden;
  const slashes = hidden.indexOf('//');
  const start = slashes !== -1 && slashes < at ? slashes + 2 : 0;
  const colon = hidden.indexOf(':', start);
  if (colon === -1 || colon > at) return hidden;
  return `${hidden.slice(0, colon + 1)}***${hidden.slice(at)}`;
}

/** Whether the listen address only accepts connections from this machine. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127(\.\d{1,3}){3}$/.test(host);
}

/** AUTH as it applies: unset means off only while the service listens on loopback (secure by default). */
export function authMode(config: Pick<Config, 'AUTH' | 'HOST'>): 'off' | 'keys' {
  return config.AUTH ?? (isLoopback(config.HOST) ? 'off' : 'keys');
}

/** A value as a configuration error may show it. */
function shownValue(variable: string, value: unknown): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value ?? '');
  if (SECRET_SETTINGS.has(variable)) return `(${text.length} characters, not shown)`;
  if (URL_SETTINGS.has(variable)) return JSON.stringify(withoutPassword(text));
  return JSON.stringify(text);
}

/** For a value that must be printable ASCII: where the first character that is not is, without showing it. */
function firstUnprintable(value: unknown): string {
  if (typeof value !== 'string') return '';
  const at = [...value].findIndex((character) => !/^[\x20-\x7E]$/.test(character));
  return at === -1 ? '' : ` (character ${at + 1} is not printable ASCII)`;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

export function durationToMs(duration: string): number {
  const unit = duration.at(-1) ?? 's';
  const multiplier = UNIT_SECONDS[unit];
  return multiplier === undefined ? Number(duration) * 1000 : Number(duration.slice(0, -1)) * multiplier * 1000;
}

function describeExpected(schema: TSchema): string {
  if (schema.enum) return `one of ${(schema.enum as string[]).join(', ')}`;
  const parts: string[] = [schema.type === 'integer' ? 'an integer' : `a ${String(schema.type)}`];
  if (schema.minimum !== undefined) parts.push(`>= ${String(schema.minimum)}`);
  if (schema.exclusiveMinimum !== undefined) parts.push(`> ${String(schema.exclusiveMinimum)}`);
  if (schema.maximum !== undefined) parts.push(`<= ${String(schema.maximum)}`);
  if (typeof schema.minLength === 'number' && schema.minLength > 1) parts.push(`at least ${schema.minLength} characters`);
  if (schema.pattern !== undefined) parts.push(`matching ${String(schema.pattern)}`);
  return parts.join(', ');
}

/**
 * Reads the configuration from an environment once at boot. Empty strings count as unset, so a
 * `FOO=` line in a compose file means "use the default" rather than "invalid".
 */
export function loadConfig(env: Record<string, string | undefined>, overrides: Partial<Config> = {}): Config {
  const raw: Record<string, unknown> = {};
  for (const key of Object.keys(ConfigSchema.properties)) {
    const value = env[key];
    if (value !== undefined && value.trim() !== '') raw[key] = value.trim();
  }
  Object.assign(raw, overrides);
  const candidate = Value.Convert(ConfigSchema, Value.Default(ConfigSchema, structuredClone(raw)));
  const firstError = Value.Errors(ConfigSchema, candidate).First();
  if (firstError) {
    const variable = firstError.path.replace(/^\//, '').split('/')[0] ?? firstError.path;
    const property = ConfigSchema.properties[variable as keyof typeof ConfigSchema.properties] as TSchema | undefined;
    const expected = property ? describeExpected(property) : firstError.message;
    const where = SECRET_SETTINGS.has(variable) ? firstUnprintable(raw[variable]) : '';
    throw new ConfigError(`${variable}=${shownValue(variable, raw[variable])} is invalid: expected ${expected}${where}`);
  }
  return candidate as Config;
}
