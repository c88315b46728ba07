import { mkdir, rm } from 'node:fs/promises';
import { createConnection, createServer, type Server } from 'node:net';
import { join, relative, resolve } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import type { FastifyBaseLogger } from 'fastify';
import { errorMessage } from '../errors/message.js';

export interface EmbeddedDatabase {
  /** postgresql:// URL for pg.Pool / connectDatabase(url, { maxConnections }) */
  url: string;
  /** How many pool connections the embedded server can serve; pass it as maxConnections to connectDatabase. */
  maxConnections: number;
  /** Stops the socket server, closes PGlite (its files are then complete on disk) and frees DATA_DIR. */
  close(): Promise<void>;
}

export class EmbeddedDatabaseError extends Error {
  override name = 'EmbeddedDatabaseError';
}

/**
 * PGlite is one PostgreSQL session. pglite-socket multiplexes its connections onto that session message by
 * message, so two connections' Parse/Bind/Execute sequences can interleave and bind each other's unnamed
 * statement (electric-sql/pglite#1046; reproduced here with a multi-megabyte parameter). One pool connection
 * keeps every sequence whole, and PGlite runs one statement at a time anyway.
 */
const POOL_CONNECTIONS = 1;

/**
 * The server refuses sockets beyond its limit with a non-protocol reply. A pool that drops a connection opens
 * the next one before the server has seen the old one close, so the limit leaves room for those.
 */
const ACCEPTED_SOCKETS = 8;

const LOCK_SOCKET = 'embedded.lock';
/** libuv silently truncates longer unix socket paths; 103 bytes fit sun_path on Linux and on macOS/BSD. */
const MAX_SOCKET_PATH_BYTES = 103;

const errorCode = (err: unknown) => (err as NodeJS.ErrnoException).code;

function listen(path: string): Promise<Server> {
  return new Promise((resolvePromise, reject) => {
    const server = createServer((socket) => socket.destroy());
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolvePromise(server);
    });
  });
}

/** Whether a live process listens on the socket; a socket file left by a killed one refuses connections. */
function isAnswered(path: string): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const socket = createConnection(path);
    socket.once('connect', () => {
      socket.destroy();
      resolvePromise(true);
    });
    socket.once('error', (err) => {
      const code = errorCode(err);
      resolvePromise(code !== 'ECONNREFUSED' && code !== 'ENOENT');
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolvePromise) => server.close(() => resolvePromise()));
}

/**
 * PGlite does not lock its data directory, and two processes writing one would corrupt it. A unix socket
 * listening inside DATA_DIR is the lock: unlike a PID file it is seen across PID namespaces (containers
 * sharing a volume), and a crashed holder is recognised because nothing answers on its socket any more.
 */
async function lockDataDir(dataDir: string, logger: FastifyBaseLogger | undefined): Promise<Server> {
  const absolute = resolve(dataDir, LOCK_SOCKET);
  const fromCwd = relative(process.cwd(), absolute);
  const path = fromCwd.length < absolute.length ? fromCwd : absolute;
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH_BYTES) {
    throw new EmbeddedDatabaseError(
      `DATA_DIR ${dataDir} is too deep for its lock socket ${absolute} (at most ${MAX_SOCKET_PATH_BYTES} bytes ` +
        'absolute or relative to the working directory); use a shorter DATA_DIR',
    );
  }
  try {
    return await listen(path);
  } catch (err) {
    if (errorCode(err) !== 'EADDRINUSE') throw err;
  }
  if (await isAnswered(path)) {
    throw new EmbeddedDatabaseError(
      `DATA_DIR ${dataDir} is in use by another running instance (${absolute} is held); stop it, ` +
        'choose another DATA_DIR, or set DATABASE_URL to use a PostgreSQL server',
    );
  }
  logger?.warn({ dataDir }, 'the previous embedded database did not shut down cleanly; taking over its DATA_DIR');
  await rm(path, { force: true });
  return listen(path);
}

/**
 * PostgreSQL without a server to install: PGlite persisted in DATA_DIR, served on a loopback port so that
 * the service reaches it through pg, Prisma and the migrations exactly as it reaches a real server.
 */
export async function startEmbeddedDatabase(
  dataDir: string,
  options: { logger?: FastifyBaseLogger } = {},
): Promise<EmbeddedDatabase> {
  const { logger } = options;
  await mkdir(dataDir, { recursive: true });
  const lock = await lockDataDir(dataDir, logger);
  let db: PGlite;
  try {
    // A subdirectory, because initdb needs an empty directory and DATA_DIR holds the lock socket.
    db = await PGlite.create({ dataDir: join(dataDir, 'pgdata') });
  } catch (err) {
    await closeServer(lock);
    throw new EmbeddedDatabaseError(
      `could not open the embedded database in DATA_DIR ${dataDir}: ${errorMessage(err)}`,
      { cause: err },
    );
  }
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: ACCEPTED_SOCKETS });
  try {
    await server.start();
  } catch (err) {
    await db.close().catch(() => undefined);
    await closeServer(lock);
    throw err;
  }
  server.addEventListener('error', (event) => {
    logger?.warn({ err: (event as CustomEvent<unknown>).detail }, 'embedded database socket server error');
  });
  logger?.info({ dataDir, address: server.getServerConn() }, 'embedded PostgreSQL (PGlite) started');

  let closing: Promise<void> | undefined;
  const shutdown = async () => {
    await server.stop();
    await db.close();
    await closeServer(lock);
  };
  return {
    url: `postgresql://postgres@${server.getServerConn()}/postgres`,
    maxConnections: POOL_CONNECTIONS,
    close: () => (closing ??= shutdown()),
  };
}
