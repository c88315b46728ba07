/**
 * The worker thread that holds the process's Team Cymru sockets (src/sources/cymru-connections.ts starts
 * it). Each client's queries wait here in order and at most its maxConnections are open at once, so that
 * the next query leaves the moment one closes, however busy the main thread is with the answers.
 */
import { parentPort } from 'node:worker_threads';
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

interface ClientQueue {
  open: number;
  waiting: Array<{ message: QueryMessage; at: number }>;
}

const port = parentPort;
if (!port) throw new Error('cymru-thread.ts runs as a worker thread');
const clients = new Map<number, ClientQueue>();

function pump(client: number, queue: ClientQueue): void {
  while (queue.waiting.length > 0 && queue.open < (queue.waiting[0]?.message.maxConnections ?? 0)) {
    const { message, at } = queue.waiting.shift()!;
    queue.open += 1;
    port!.postMessage({ kind: 'opened', id: message.id, waitedMs: performance.now() - at } satisfies FromThread);
    void exchange(message.target, message.addresses).then(({ text, failure }) => {
      queue.open -= 1;
      // The next query first: parsing this answer and its trip to the main thread are not on its way.
      pump(client, queue);
      if (queue.open === 0 && queue.waiting.length === 0) clients.delete(client);
      // On the next turn, once the new connection's request has been written.
      setImmediate(() => {
        const result: QueryResult = { rows: parseBulkAnswer(text), ...(failure === undefined ? {} : { failure }) };
        port!.postMessage({ kind: 'answered', id: message.id, result } satisfies FromThread);
      });
    });
  }
}

port.on('message', (message: ToThread) => {
  if (message.kind === 'drop') {
    const queue = clients.get(message.client);
    if (queue) queue.waiting.length = 0;
    return;
  }
  let queue = clients.get(message.client);
  if (!queue) clients.set(message.client, (queue = { open: 0, waiting: [] }));
  queue.waiting.push({ message, at: performance.now() });
  pump(message.client, queue);
});
