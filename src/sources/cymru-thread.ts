/**
 * The worker thread that holds the process's Team Cymru sockets (src/sources/cymru-connections.ts starts
 * it). Each client's queries wait here in order and at most its maxConnections are open at once, so that
 * the next query leaves the moment one closes, however busy the main thread is with the answers.
 */
import { parentPort } from 'node:worker_threads';
import pLimit, { type LimitFunction } from 'p-limit';
import { exchange, type ExchangeTarget, type QueryResult } from './cymru-exchange.js';
import { parseBulkAnswer } from './cymru-parser.js';

export interface QueryMessage {
  kind: 'query';
  client: number;
  id: number;
  target: ExchangeTarget;
  maxConnections: number;
  addresses: readonly string[];
}

/** A closed client's queries that have not left are forgotten; the open ones run to their end. */
export interface DropMessage {
  kind: 'drop';
  client: number;
}

export type ToThread = QueryMessage | DropMessage;

/** opened: the query's connection is being made, waitedMs after it reached the thread. */
export type FromThread =
  | { kind: 'opened'; id: number; waitedMs: number }
  | { kind: 'answered'; id: number; result: QueryResult };

const port = parentPort;
if (!port) throw new Error('cymru-thread.ts runs as a worker thread');
/** Each client's queue, with its connection limit. */
const clients = new Map<number, LimitFunction>();

port.on('message', (message: ToThread) => {
  if (message.kind === 'drop') {
    clients.get(message.client)?.clearQueue();
    clients.delete(message.client);
    return;
  }
  const { client, id, target, addresses, maxConnections } = message;
  const queue = clients.get(client) ?? pLimit(maxConnections);
  clients.set(client, queue);
  const queued = performance.now();
  void queue(() => {
    port.postMessage({ kind: 'opened', id, waitedMs: performance.now() - queued } satisfies FromThread);
    return exchange(target, addresses);
  }).then(({ text, failure }) => {
    // p-limit has opened the next query's connection by now; this answer is parsed on the next turn, once that
    // query's request has been written, and its trip to the main thread is not on the next query's way either.
    if (queue.activeCount === 0 && queue.pendingCount === 0 && clients.get(client) === queue) clients.delete(client);
    setImmediate(() => {
      const result: QueryResult = { rows: parseBulkAnswer(text), ...(failure === undefined ? {} : { failure }) };
      port.postMessage({ kind: 'answered', id, result } satisfies FromThread);
    });
  });
});
