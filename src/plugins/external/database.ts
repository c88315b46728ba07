import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { connectDatabase, type DatabaseHandle } from '../../db/client.js';
import { startEmbeddedDatabase } from '../../db/embedded.js';
import { applyMigrations, MigrationError } from '../../db/migrate.js';
import { errorMessage } from '../../errors/message.js';

declare module 'fastify' {
  interface FastifyInstance {
    database: DatabaseHandle;
  }
}

/**
 * PostgreSQL at DATABASE_URL, or the embedded PGlite in DATA_DIR; the plugin resolves only once every
 * migration is applied, so nothing registered after it ever sees an old schema.
 */
async function database(app: FastifyInstance) {
  const { config } = app;
  const closers: Array<() => Promise<void>> = [];
  app.addHook('onClose', async () => {
    for (const close of closers.reverse()) {
      await close().catch((error: unknown) => app.log.warn({ err: error }, 'error while closing the database'));
    }
  });

  let handle: DatabaseHandle;
  if (config.DATABASE_URL) {
    handle = connectDatabase(config.DATABASE_URL, { timeoutMs: config.DATABASE_TIMEOUT_MS });
  } else {
    const embedded = await startEmbeddedDatabase(config.DATA_DIR, { logger: app.log });
    closers.push(() => embedded.close());
    handle = connectDatabase(embedded.url, { maxConnections: embedded.maxConnections, timeoutMs: config.DATABASE_TIMEOUT_MS });
    app.readiness.noteDefault(`DATABASE_URL unset: embedded PostgreSQL (PGlite) in DATA_DIR ${config.DATA_DIR}`);
  }
  closers.push(() => handle.close());
  try {
    await applyMigrations(handle.pool, { logger: app.log });
  } catch (error) {
    if (error instanceof MigrationError) throw error;
    const where = config.DATABASE_URL ? 'the database at DATABASE_URL' : `the embedded database in DATA_DIR ${config.DATA_DIR}`;
    throw new Error(`cannot reach ${where}: ${errorMessage(error)}`, { cause: error });
  }

  app.readiness.add('database', () =>
    handle.prisma.$queryRaw`SELECT 1`.then(
      () => ({ status: 'ok' as const }),
      (error: unknown) => {
        app.log.warn({ err: error }, 'readiness: database unreachable');
        return { status: 'error' as const, error: 'database unreachable' };
      },
    ),
  );
  app.decorate('database', handle);
}

export default fp(database, { name: 'database', dependencies: ['readiness'] });
