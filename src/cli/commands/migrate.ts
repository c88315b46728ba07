import type { FastifyBaseLogger } from 'fastify';
import { ConfigError, loadConfig } from '../../config.js';
import { connectDatabase, type DatabaseHandle } from '../../db/client.js';
import { startEmbeddedDatabase, type EmbeddedDatabase } from '../../db/embedded.js';
import { applyMigrations } from '../../db/migrate.js';
import { errorMessage } from '../../errors/message.js';
import { prepareQueues } from '../../jobs/queue.js';
import { CliError, EXIT } from '../exit.js';

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

/**
 * `ip-enrich migrate`: applies the pending migrations to DATABASE_URL (or the embedded database in DATA_DIR),
 * creates or upgrades the job queue's schema (pg-boss) with the service's queues, and exits, so that a deploy
 * pipeline can migrate before it rolls the new release out, and the service can run as a role without DDL
 * rights. The service does both at boot as well; each takes its own lock, so the two never race.
 */
export async function migrate(): Promise<number> {
  let config;
  try {
    config = loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) throw new CliError(`configuration error: ${error.message}`, EXIT.usage);
    throw error;
  }
  const logger = stderrLogger('info');
  const where = config.DATABASE_URL ? 'the database at DATABASE_URL' : `the embedded database in DATA_DIR ${config.DATA_DIR}`;
  let embedded: EmbeddedDatabase | undefined;
  let handle: DatabaseHandle | undefined;
  try {
    if (config.DATABASE_URL) {
      handle = connectDatabase(config.DATABASE_URL, { timeoutMs: config.DATABASE_TIMEOUT_MS });
    } else {
      embedded = await startEmbeddedDatabase(config.DATA_DIR);
      handle = connectDatabase(embedded.url, { maxConnections: embedded.maxConnections, timeoutMs: config.DATABASE_TIMEOUT_MS });
    }
    const result = await applyMigrations(handle.pool, { logger });
    const total = result.applied.length + result.alreadyApplied.length;
    process.stderr.write(
      result.applied.length > 0
        ? `applied ${result.applied.length} migration${result.applied.length === 1 ? '' : 's'} to ${where}\n`
        : `${where} is up to date (${total} migrations applied before)\n`,
    );
    await prepareQueues(handle.pool);
    process.stderr.write(`the job queue's schema (pg-boss) and queues are ready in ${where}\n`);
    return EXIT.ok;
  } catch (error) {
    throw new CliError(`migrating ${where} failed: ${errorMessage(error)}`, EXIT.failed);
  } finally {
    await handle?.close().catch(() => undefined);
    await embedded?.close().catch(() => undefined);
  }
}
