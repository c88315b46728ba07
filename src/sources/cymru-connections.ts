import { Worker } from 'node:worker_threads';
import type { ExchangeTarget, QueryResult } from './cymru-exchange.js';
import type { FromThread, ToThread } from './cymru-thread.js';

/** What a query brought back, and how long it waited in the thread for one of its client's connections. */
export interface ConnectionAnswer extends QueryResult {
  waitedMs: number;
}

interface Pending {
  client: number;
  resolve: (answer: ConnectionAnswer) => void;
  waitedMs: number;
}

const HERE = import.meta.url;

/**
 * The built service runs the thread's JavaScript; run from its TypeScript sources (tests, tsx), the thread
 * loads its file through tsx, which a worker does not inherit from the process that starts it.
 */
function startWorker(): Worker {
  if (!HERE.endsWith('.ts')) return new Worker(new URL('./cymru-thread.js', HERE));
  const file = new URL('./cymru-thread.ts', HERE).href;
  return new Worker(`import('tsx/esm/api').then(({ tsImport }) => tsImport(${JSON.stringify(file)}, ${JSON.stringify(HERE)}))`, {
    eval: true,
  });
}

/**
 * The process's one thread of Team Cymru sockets (src/sources/cymru-thread.ts), shared by every client. It
 * keeps the process alive only while a query is out.
 */
class CymruThread {
  #worker: Worker | undefined;
  readonly #pending = new Map<number, Pending>();
  readonly #opened = new Map<number, number>();
  /** Answers arrived and not handed over yet, in order of arrival; see #handOver. */
  readonly #arrived: Array<{ id: number; result: QueryResult }> = [];
  #nextId = 0;
  #nextClient = 0;

  /** Started with the first client, so that the first query does not wait for the thread to boot. */
  register(): number {
    this.#worker ??= this.#start();
    return this.#nextClient++;
  }

  /** Open connections of one client right now. */
  open(client: number): number {
    return this.#opened.get(client) ?? 0;
  }

  query(client: number, target: ExchangeTarget, maxConnections: number, addresses: readonly string[]): Promise<ConnectionAnswer> {
    const worker = (this.#worker ??= this.#start());
    if (this.#pending.size === 0) worker.ref();
    const id = this.#nextId++;
    return new Promise((resolve) => {
      this.#pending.set(id, { client, resolve, waitedMs: 0 });
      worker.postMessage({ kind: 'query', client, id, target, maxConnections, addresses } satisfies ToThread);
    });
  }

  /**
   * Ends a client's queries that are waiting or out with `failure`. The thread stays for the next client: idle,
   * it holds nothing open and does not keep the process alive.
   */
  unregister(client: number, failure: string): void {
    this.#worker?.postMessage({ kind: 'drop', client } satisfies ToThread);
    for (const [id, pending] of this.#pending) if (pending.client === client) this.#settle(id, { rows: new Map(), failure });
    this.#opened.delete(client);
  }

  #start(): Worker {
    const worker = startWorker();
    worker.unref();
    worker.on('message', (message: FromThread) => {
      const pending = this.#pending.get(message.id);
      if (!pending) return;
      if (message.kind === 'opened') {
        pending.waitedMs = message.waitedMs;
        this.#opened.set(pending.client, this.open(pending.client) + 1);
      } else {
        this.#opened.set(pending.client, this.open(pending.client) - 1);
        this.#arrived.push({ id: message.id, result: message.result });
        if (this.#arrived.length === 1) setImmediate(this.#handOver);
      }
    });
    // A thread that fails or stops takes its queries with it; they fail and the next query starts a new one.
    const lost = (reason: string) => {
      if (this.#worker !== worker) return;
      this.#worker = undefined;
      this.#opened.clear();
      for (const id of [...this.#pending.keys()]) this.#settle(id, { rows: new Map(), failure: `the Team Cymru socket thread stopped: ${reason}` });
    };
    worker.on('error', (error) => lost(error.message));
    worker.on('exit', (code) => lost(`it exited with code ${code}`));
    return worker;
  }

  /**
   * Hands over one answer per turn of the event loop. Answers the thread posted while the main thread was busy
   * arrive together, and a MessagePort runs every message waiting for it in one callback, with the promise
   * reactions of each: the work each answer starts (a cascade chunk's merge and write, 20-60 ms in a cold
   * list's first chunks) then ran back to back, and the replies of Redis and PostgreSQL that other chunks
   * waited for sat unread meanwhile (up to 650 ms at 8 connections; the next bulk queries waited with them).
   */
  readonly #handOver = (): void => {
    const next = this.#arrived.shift();
    if (next) this.#settle(next.id, next.result);
    if (this.#arrived.length > 0) setImmediate(this.#handOver);
  };

  #settle(id: number, result: QueryResult): void {
    const pending = this.#pending.get(id);
    if (!pending) return;
    this.#pending.delete(id);
    if (this.#pending.size === 0) this.#worker?.unref();
    pending.resolve({ ...result, waitedMs: pending.waitedMs });
  }
}

const thread = new CymruThread();

/** One client's share of the thread: its own target and connection limit. */
export class CymruConnections {
  readonly #client = thread.register();
  #closed = false;

  constructor(
    private readonly target: ExchangeTarget,
    private readonly maxConnections: number,
  ) {}

  /** Resolves once the exchange is over, whatever its outcome; a closed client's queries fail at once. */
  query(addresses: readonly string[]): Promise<ConnectionAnswer> {
    if (this.#closed) return Promise.resolve({ rows: new Map(), failure: 'the Team Cymru client is closed', waitedMs: 0 });
    return thread.query(this.#client, this.target, this.maxConnections, addresses);
  }

  /** Connections open right now. */
  open(): number {
    return thread.open(this.#client);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    thread.unregister(this.#client, 'the Team Cymru client is closed');
  }
}
