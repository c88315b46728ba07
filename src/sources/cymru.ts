import type { FastifyBaseLogger } from 'fastify';
import { chunks } from '../chunks.js';
import { systemClock, type Clock } from '../clock.js';
import type { BulkAsnSource, BulkSourceHealth } from '../enrich/sources.js';
import type { Asn, SourceOutcome } from '../record/model.js';
import { traceCymruQuery } from '../tracing/upstreams.js';
import { CymruConnections } from './cymru-connections.js';

export interface CymruOptions {
  host: string;
  port: number;
  batchSize: number;
  maxConnections: number;
  timeoutMs: number;
  retries: number;
  /** First retry delay; later ones double, with jitter. Default 250 ms. */
  retryBaseDelayMs?: number;
  /** Runs the retry delays and dates a failure; the query timeout is real time, as it bounds I/O. */
  clock?: Clock;
  logger?: FastifyBaseLogger;
}

type CymruOutcome = SourceOutcome<Asn>;

const NO_ANSWER = 'no answer from Team Cymru for this address';
const DEFAULT_RETRY_BASE_DELAY_MS = 250;
const READY: BulkSourceHealth = { status: 'ready' };

function toOutcome(asn: Asn | null): CymruOutcome {
  return asn ? { status: 'ok', data: asn } : { status: 'not_found', data: null };
}

/**
 * Client for Team Cymru's bulk whois (whois.cymru.com:43). One instance is shared by every request of the
 * process so that its connection limit holds process-wide: Team Cymru asks bulk users to keep the number
 * of parallel queries low and may block hosts that do not. The sockets themselves live on a thread of their
 * own (src/sources/cymru-connections.ts).
 */
export class CymruClient implements BulkAsnSource {
  readonly #options: CymruOptions;
  readonly #clock: Clock;
  readonly #connections: CymruConnections;
  #queries = 0;
  #failures = 0;
  #health: BulkSourceHealth = READY;
  /** Addresses whose bulk query is waiting or out, with the answer of that query. */
  readonly #asking = new Map<string, Promise<Map<string, CymruOutcome>>>();

  constructor(options: CymruOptions) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    const { host, port, timeoutMs, maxConnections } = options;
    this.#connections = new CymruConnections({ host, port, timeoutMs }, maxConnections);
  }

  /** Ready before any query, and after any query that got through; failing after one that never did. */
  health(): BulkSourceHealth {
    return this.#health;
  }

  /** Resolves with one outcome per distinct input address; never rejects for upstream problems. */
  async lookup(ips: readonly string[]): Promise<Map<string, CymruOutcome>> {
    const outcomes = new Map<string, CymruOutcome>();
    await this.lookupStreaming(ips, (batch) => {
      for (const [ip, outcome] of batch) outcomes.set(ip, outcome);
    });
    return outcomes;
  }

  /**
   * Calls onBatch once per batch as soon as its outcome is final. Calls never overlap, so the callback may
   * merge into shared state or persist without its own locking. Rejects only if onBatch does, and then
   * only after every batch has finished.
   *
   * An address another lookup's query is asking for already is not asked again: its answer comes from that
   * query (two identical lists sent at once make one set of queries). Such an address is counted as asked
   * until the query's own onBatch has returned (the cascade starts its write there); a lookup that arrives
   * after that and before the write is done asks again, as it would for an address nobody asked about.
   */
  async lookupStreaming(
    ips: readonly string[],
    onBatch: (results: Map<string, CymruOutcome>) => void | Promise<void>,
  ): Promise<void> {
    const own: string[] = [];
    const joined = new Map<Promise<Map<string, CymruOutcome>>, string[]>();
    for (const ip of new Set(ips)) {
      const asking = this.#asking.get(ip);
      if (!asking) own.push(ip);
      else if (joined.has(asking)) joined.get(asking)!.push(ip);
      else joined.set(asking, [ip]);
    }
    const answers = chunks(own, this.#options.batchSize).map((batch) => {
      const answer = this.#runBatch(batch);
      for (const ip of batch) this.#asking.set(ip, answer);
      const taken = () => {
        for (const ip of batch) if (this.#asking.get(ip) === answer) this.#asking.delete(ip);
      };
      return { answer, taken };
    });
    for (const [answer, shared] of joined) {
      const subset = answer.then((results) => new Map(shared.map((ip) => [ip, results.get(ip)!])));
      answers.push({ answer: subset, taken: () => undefined });
    }
    let delivered: Promise<void> = Promise.resolve();
    const settled = await Promise.allSettled(
      answers.map(async ({ answer, taken }) => {
        try {
          const results = await answer;
          const delivery = delivered.then(() => onBatch(results));
          delivered = delivery.catch(() => undefined);
          await delivery;
        } finally {
          taken();
        }
      }),
    );
    const rejected = settled.find((result) => result.status === 'rejected');
    if (rejected) throw rejected.reason;
  }

  /** queries: bulk queries attempted (retries included); failures: attempts that failed; inFlight: open now. */
  stats(): { queries: number; failures: number; inFlight: number } {
    return { queries: this.#queries, failures: this.#failures, inFlight: this.#connections.open() };
  }

  /** Fails the queries still waiting or out; a lookup after this answers every address with an error. */
  close(): void {
    this.#connections.close();
  }

  async #runBatch(batch: readonly string[]): Promise<Map<string, CymruOutcome>> {
    const outcomes = new Map<string, CymruOutcome>();
    const { retries, logger } = this.#options;
    let pending = batch;
    let failure: string | undefined;
    let firstFailureAt: number | undefined;
    for (let attempt = 0; attempt <= retries && pending.length > 0; attempt++) {
      if (attempt > 0) await this.#clock.sleep(this.#backoffMs(attempt - 1));
      const asked = pending;
      this.#queries++;
      const result = await traceCymruQuery(asked.length, attempt + 1, () => this.#connections.query(asked));
      for (const ip of asked) {
        const asn = result.rows.get(ip);
        if (asn !== undefined) outcomes.set(ip, toOutcome(asn));
      }
      // Rows that arrived before a failure are final; only the addresses still unanswered are asked again.
      pending = asked.filter((ip) => !outcomes.has(ip));
      failure = result.failure ?? (pending.length === asked.length ? 'no parseable row in the answer' : undefined);
      if (failure === undefined) break;
      firstFailureAt ??= this.#clock.now();
      this.#failures++;
      logger?.warn(
        { attempt: attempt + 1, addresses: asked.length, unanswered: pending.length, reason: failure },
        'Team Cymru bulk query failed',
      );
    }
    if (failure === undefined) {
      this.#health = READY;
    } else {
      // A run of failed queries began when the first of them failed; a query that gets through ends it.
      const began = this.#health.status === 'failing' ? this.#health.since : new Date(firstFailureAt ?? this.#clock.now()).toISOString();
      this.#health = { status: 'failing', reason: failure, since: began };
    }
    // After a clean answer the server chose to skip these addresses; after failures we never learnt.
    const error = failure === undefined ? NO_ANSWER : `Team Cymru bulk query failed: ${failure}`;
    for (const ip of pending) outcomes.set(ip, { status: 'error', error });
    return outcomes;
  }

  #backoffMs(retry: number): number {
    const delay = (this.#options.retryBaseDelayMs ?? DEFAULT_RETRY_BASE_DELAY_MS) * 2 ** retry;
    return delay / 2 + Math.random() * (delay / 2);
  }
}
