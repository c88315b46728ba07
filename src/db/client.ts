import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PrismaClient } from '../generated/prisma/client.js';

export type Database = PrismaClient;

export interface DatabaseHandle {
  prisma: Database;
  /**
   * The pool Prisma runs on; the migration runner borrows one session from it for its advisory lock, so its
   * statements and its wait for the lock are bounded like every other.
   */
  pool: pg.Pool;
  close(): Promise<void>;
}

export interface ConnectOptions {
  maxConnections?: number;
  /**
   * Bounds getting a connection and every statement; unset, the service waits as long as PostgreSQL takes.
   * The client gives up on a server that stops answering (a frozen network, a stopped process) with
   * query_timeout; statement_timeout makes the server give up at the same point, so that a statement the
   * client abandoned does not run on and keep its row locks.
   */
  timeoutMs?: number;
}

export function connectDatabase(url: string, options: ConnectOptions = {}): DatabaseHandle {
  const { timeoutMs } = options;
  const pool = new pg.Pool({
    connectionString: url,
    max: options.maxConnections ?? 10,
    connectionTimeoutMillis: timeoutMs,
    query_timeout: timeoutMs,
    statement_timeout: timeoutMs,
  });
  // An idle client that loses its server (restart, failover) emits here; without a listener it would crash.
  pool.on('error', () => undefined);
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool) });
  return {
    prisma,
    pool,
    async close() {
      await prisma.$disconnect();
      await pool.end();
    },
  };
}
