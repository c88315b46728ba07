import type { FastifyBaseLogger } from 'fastify';
import { ConfigError, loadConfig, type Config } from '../../config.js';
import { connectDatabase, type DatabaseHandle } from '../../db/client.js';
import { startEmbeddedDatabase, type EmbeddedDatabase } from '../../db/embedded.js';
import { applyMigrations } from '../../db/migrate.js';
import { errorMessage } from '../../errors/message.js';
import { prepareQueues } from '../../jobs/queue.js';
import { CliError, EXIT } from '../exit.js';

export interface ServeOptions {
  host?: string;
  port?: string;
}

/**
 * `ip-enrich serve` / `ip-enrich worker`: the service itself (src/server.ts, as `npm start` runs it) in the
 * role asked for, configured by the same variables; the options only set HOST and PORT.
 */
export async function serve(role: 'all' | 'api' | 'worker', options: ServeOptions): Promise<void> {
  if (options.host !== undefined) process.env.HOST = options.host;
  if (options.port !== undefined) process.env.PORT = options.port;
  process.env.ROLE = role;
  // The server module boots on import, and from then on owns the process: its signals, its exit.
  await import('../../server.js');
}

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;

/** Log lines on standard error as plain text, for the one-shot commands that run without Fastify. */
function stderrLogger(level: (typeof LEVELS)[number]): FastifyBaseLogger {
  const shown = LEVELS.indexOf(level);
  const logger: Record<string, unknown> = { level };
  for (const [index, name] of LEVELS.entries()) {
    logger[name] = (first: unknown, message?: string) => {
      if (index > shown) return;
      const text = typeof first === 'string' ? first : (message ?? '');
      const fields = typeof first === 'object' && first !== null ? first : undefined;
      process.stderr.write(`${name}: ${text}${fields ? ` ${JSON.stringify(fields)}` : ''}\n`);
    };
  }
  logger.silent = () => undefined;
  logger.child = () => logger;
  return logger as unknown as FastifyBaseLogger;
}

/** The configuration of a one-shot command; a bad setting is a usage error, in the service's one line. */
export function commandConfig(): Config {
  try {
    return loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) throw new CliError(`configuration error: ${error.message}`, EXIT.usage);
    throw error;
  }
}

/** Where a one-shot command works: DATABASE_URL, or the embedded database in DATA_DIR. */
export const databaseName = (config: Config) =>
  config.DATABASE_URL ? 'the database at DATABASE_URL' : `the embedded database in DATA_DIR ${config.DATA_DIR}`;

/** Runs `work` on the configured database (started, when it is the embedded one), then closes it. */
export async function withDatabase<T>(config: Config, work: (handle: DatabaseHandle) => Promise<T>): Promise<T> {
  let embedded: EmbeddedDatabase | undefined;
  let handle: DatabaseHandle | undefined;
  try {
    if (config.DATABASE_URL) {
      handle = connectDatabase(config.DATABASE_URL, { timeoutMs: config.DATABASE_TIMEOUT_MS });
    } else {
      embedded = await startEmbeddedDatabase(config.DATA_DIR);
      handle = connectDatabase(embedded.url, { maxConnections: embedded.maxConnections, timeoutMs: config.DATABASE_TIMEOUT_MS });
    }
    return await work(handle);
  } finally {
    await handle?.close().catch(() => undefined);
    await embedded?.close().catch(() => undefined);
  }
}

/**
 * `ip-enrich migrate`: applies the pending migrations to DATABASE_URL (or the embedded database in DATA_DIR),
 * creates or upgrades the job queue's schema (pg-boss) with the service's queues, and exits, so that a deploy
 * pipeline can migrate before it rolls the new release out, and the service can run as a role without DDL
 * rights. The service does both at boot as well; each takes its own lock, so the two never race.
 */
export async function migrate(): Promise<number> {
  const config = commandConfig();
  const logger = stderrLogger('info');
  const where = databaseName(config);
  try {
    await withDatabase(config, async (handle) => {
      const result = await applyMigrations(handle.pool, { logger });
      const total = result.applied.length + result.alreadyApplied.length;
      process.stderr.write(
        result.applied.length > 0
          ? `applied ${result.applied.length} migration${result.applied.length === 1 ? '' : 's'} to ${where}\n`
          : `${where} is up to date (${total} migrations applied before)\n`,
      );
      await prepareQueues(handle.pool);
      process.stderr.write(`the job queue's schema (pg-boss) and queues are ready in ${where}\n`);
    });
    return EXIT.ok;
  } catch (error) {
    throw new CliError(`migrating ${where} failed: ${errorMessage(error)}`, EXIT.failed);
  }
}
