import type { FastifyServerOptions } from 'fastify';
import type { Config } from '../../config.js';

/** A token's secret part, wherever it turns up (a URL a client mistyped, an error echoing a header). */
const API_KEY_SECRET = /(ipe_[A-Za-z0-9_-]{8}_)[A-Za-z0-9_-]{43}/g;

/** Fields that hold a secret, in whatever object is logged. */
const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers.cookie',
  'headers.authorization',
  'headers["x-api-key"]',
  'config.GREYNOISE_API_KEY',
  'config.METRICS_TOKEN',
  'config.DATABASE_URL',
  'config.REDIS_URL',
];

function passwordOf(url: string | undefined): string[] {
  if (!url) return [];
  try {
    const { password } = new URL(url);
    return password ? [password, decodeURIComponent(password)] : [];
  } catch {
    return [];
  }
}

/** The secret values of this configuration, longest first so that one containing another is hidden whole. */
export function secretsOf(config: Config): string[] {
  const values = [config.GREYNOISE_API_KEY, config.METRICS_TOKEN, ...passwordOf(config.DATABASE_URL), ...passwordOf(config.REDIS_URL)];
  const secrets = new Set<string>();
  // A secret of one or two characters would turn every log line into noise; such a secret protects nothing anyway.
  for (const value of values) if (value && value.length >= 3) secrets.add(value).add(JSON.stringify(value).slice(1, -1));
  return [...secrets].sort((a, b) => b.length - a.length);
}

/** Text with every secret of the configuration, and every API key's secret part, replaced. */
export function scrubber(config: Config): (text: string) => string {
  const secrets = secretsOf(config);
  return (text) => {
    let scrubbed = text.replace(API_KEY_SECRET, '$1[redacted]');
    for (const secret of secrets) if (scrubbed.includes(secret)) scrubbed = scrubbed.replaceAll(secret, '[redacted]');
    return scrubbed;
  };
}

/**
 * The service's pino settings: the fields known to hold secrets are redacted, and every line written is
 * also searched for the secret values themselves, since an error from a driver may quote one anywhere (an
 * ioredis AUTH error carries the password among its command's arguments). Only lines that are written pay
 * for the search: at the default level a cached request writes none.
 */
export function serviceLogger(config: Config): NonNullable<FastifyServerOptions['logger']> {
  const scrub = scrubber(config);
  return {
    level: config.LOG_LEVEL,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    stream: { write: (line: string) => void process.stdout.write(scrub(line)) },
  };
}
