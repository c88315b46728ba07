import type { Redis } from 'ioredis';
import pg from 'pg';
import type { FastifyBaseLogger } from 'fastify';
import { errorMessage } from '../errors/message.js';

/** What one replica tells the others: forget a key, or the local copies of deleted records. */
export type Invalidation = { kind: 'key-revoked'; keyId: string } | { kind: 'records-deleted'; ips: string[] };

type Handler = (message: Invalidation) => void;

const PG_CHANNEL = 'ipenrich_invalidation';
/** NOTIFY payloads are limited to 8000 bytes; a larger deletion is sent in parts. */
const PG_PAYLOAD_BYTES = 7000;

export const redisChannel = (keyPrefix: string) => `${keyPrefix}invalidation`;

function parse(text: string): Invalidation | undefined {
  try {
    const message = JSON.parse(text) as Invalidation;
    if (message.kind === 'key-revoked' && typeof message.keyId === 'string') return message;
    if (message.kind === 'records-deleted' && Array.isArray(message.ips)) return message;
  } catch {
    // Not ours: another program on the same channel.
  }
  return undefined;
}

/** The messages a NOTIFY payload can carry: a deletion of many records is cut into parts. */
function pgPayloads(message: Invalidation): string[] {
  if (message.kind !== 'records-deleted') return [JSON.stringify(message)];
  const payloads: string[] = [];
  let part: string[] = [];
  let size = 0;
  for (const ip of message.ips) {
    if (size + ip.length + 3 > PG_PAYLOAD_BYTES && part.length > 0) {
      payloads.push(JSON.stringify({ kind: message.kind, ips: part }));
      part = [];
      size = 0;
    }
    part.push(ip);
    size += ip.length + 3;
  }
  if (part.length > 0) payloads.push(JSON.stringify({ kind: message.kind, ips: part }));
  return payloads;
}

/** Sends an invalidation to every replica: on Redis when there is one, else with PostgreSQL's NOTIFY. */
export async function publishInvalidation(
  transport: { redis: Redis; keyPrefix: string } | { pool: pg.Pool },
  message: Invalidation,
): Promise<void> {
  if ('redis' in transport) {
    await transport.redis.publish(redisChannel(transport.keyPrefix), JSON.stringify(message));
    return;
  }
  for (const payload of pgPayloads(message)) await transport.pool.query('SELECT pg_notify($1, $2)', [PG_CHANNEL, payload]);
}

export interface Subscription {
  close(): Promise<void>;
}

/** Listens on Redis (a connection of its own: a subscribed connection can send no other command). */
export async function subscribeRedis(redis: Redis, keyPrefix: string, handler: Handler, log: FastifyBaseLogger): Promise<Subscription> {
  const subscriber = redis.duplicate({ enableOfflineQueue: true });
  subscriber.on('error', () => undefined);
  subscriber.on('message', (_channel: string, text: string) => {
    const message = parse(text);
    if (message) handler(message);
  });
  // Subscribed on every (re)connection: ioredis renews only subscriptions that once succeeded, and Redis may
  // have been down at boot. Subscribing twice to a channel is harmless.
  const subscribe = () =>
    subscriber.subscribe(redisChannel(keyPrefix)).catch((error: unknown) => {
      log.warn(`invalidations: not subscribed on Redis yet (${errorMessage(error)}); keys are checked again every few seconds meanwhile`);
    });
  subscriber.on('ready', () => void subscribe());
  await subscribe();
  return { close: async () => void subscriber.disconnect() };
}

/**
 * Listens with PostgreSQL's LISTEN on a connection of its own, reconnecting when it is lost. Used without
 * Redis, where replicas share nothing else; what is broadcast while the connection is down is missed, which
 * the key cache's recheck bounds for keys.
 */
export function subscribePostgres(url: string, handler: Handler, log: FastifyBaseLogger): Subscription {
  let client: pg.Client | undefined;
  let closed = false;
  let retry: NodeJS.Timeout | undefined;
  const connect = async () => {
    const next = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
    next.on('notification', ({ payload }) => {
      const message = payload === undefined ? undefined : parse(payload);
      if (message) handler(message);
    });
    next.on('error', () => undefined);
    next.on('end', () => {
      if (!closed) retry = setTimeout(() => void connect(), 2000).unref();
    });
    try {
      await next.connect();
      await next.query(`LISTEN ${PG_CHANNEL}`);
      client = next;
    } catch (error) {
      log.warn(`invalidations: cannot listen on PostgreSQL (${errorMessage(error)}); trying again`);
      await next.end().catch(() => undefined);
    }
  };
  void connect();
  return {
    close: async () => {
      closed = true;
      clearTimeout(retry);
      await client?.end().catch(() => undefined);
    },
  };
}
