import type { FastifyBaseLogger } from 'fastify';
import { Agent, request } from 'undici';
import { systemClock, type Clock } from '../clock.js';
import { canonicalIp } from '../ip/address.js';
import type { AdaptiveLimiter } from '../limiter/adaptive.js';
import type { SourceOutcome } from '../record/model.js';

export interface SourceAvailability {
  status: 'ready' | 'disabled' | 'unavailable';
  reason?: string;
  refused?: true;
}

export interface LookupOptions {
  /** Epoch ms after which no request waits for the rate limit any more. */
  deadline: number;
  signal?: AbortSignal;
}

/** A source asked one address at a time over HTTP (GreyNoise, DShield). */
export interface PerAddressSource<T> {
  lookup(ips: readonly string[], options: LookupOptions): Promise<Map<string, SourceOutcome<T>>>;
  availability(): SourceAvailability;
  /** Why the source cannot answer for this address at all, decided without a request; undefined when it can. */
  unsupported(ip: string): string | undefined;
  close(): Promise<void>;
}

export interface UpstreamAnswer {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** What a source makes of an answer: an outcome, or 'retry' when the upstream sent something unreadable. */
export type Verdict<T> = SourceOutcome<T> | { status: 'retry'; error: string };

export interface HttpUpstreamOptions {
  /** Scheme, host and optional path prefix; request paths are appended. */
  baseUrl: string;
  headers: Record<string, string>;
  limiter: AdaptiveLimiter;
  clock?: Clock;
  /**
   * In real time, for each stage of a request: getting a connection, waiting for the answer's headers after
   * sending, and waiting for each further piece of the body (default 10 s). undici keeps the last two on its
   * own coarse timers, which fire up to about a second late.
   */
  timeoutMs?: number;
  /** Extra attempts after a 429, a 5xx, a timeout or unreadable JSON (default 2). */
  retries?: number;
  /** Pause before the first retry, doubled for each further one (default 250 ms). */
  retryDelayMs?: number;
  logger?: FastifyBaseLogger;
}

/**
 * The addresses of one lookup, which share its deadline and signal. Once the limiter turns one of them away
 * because the earliest moment it could go (by the budget, a block, or a free in-flight slot) is past the
 * deadline, it would turn away every later one too: neither the budget's next moment nor a block ever moves
 * earlier, and the deadline has not moved. So the rest are answered at once with the same retryAt.
 */
export class LookupRun implements LookupOptions {
  readonly deadline: number;
  readonly signal: AbortSignal | undefined;
  #refusedUntil: number | undefined;
  readonly #expiry = new AbortController();
  #requestSignal: AbortSignal | undefined;

  constructor(options: LookupOptions) {
    this.deadline = options.deadline;
    this.signal = options.signal;
  }

  /**
   * What a request of this lookup is sent with: aborted by the caller's signal, and when the deadline
   * passes, so that an upstream that is slow to answer (or trickles its body) holds no answer past it.
   */
  get requestSignal(): AbortSignal {
    this.#requestSignal ??= this.signal ? AbortSignal.any([this.signal, this.#expiry.signal]) : this.#expiry.signal;
    return this.#requestSignal;
  }

  get expired(): boolean {
    return this.#expiry.signal.aborted;
  }

  /** The deadline has passed: requests still in flight are given up. */
  expire(): void {
    this.#expiry.abort(new Error('the deadline passed'));
  }

  /** When the limiter said the next request could go, once it has refused one of this lookup's. */
  get refusedUntil(): number | undefined {
    return this.#refusedUntil;
  }

  refuse(retryAt: number): void {
    this.#refusedUntil ??= retryAt;
  }
}

const notAnAddress = (): SourceOutcome<never> => ({ status: 'error', error: 'not an IP address' });

/** Answers every distinct address of a list at once, by the address as given; `answer` gets the canonical one. */
export function answerEach<T>(ips: readonly string[], answer: (ip: string) => SourceOutcome<T>): Map<string, SourceOutcome<T>> {
  return new Map(
    [...new Set(ips)].map((ip) => {
      const canonical = canonicalIp(ip);
      return [ip, canonical === null ? notAnAddress() : answer(canonical)];
    }),
  );
}

type Task = () => Promise<void>;

/** One lookup's list in the queue. */
interface QueuedList {
  readonly deadline: number;
  /** The lookup of the next address not taken yet, or undefined when none is left. */
  take(): Task | undefined;
}

/**
 * The addresses waiting for one upstream, of every lookup under way. At most `workers` of them are asked at a
 * time: the limiter's in-flight cap, since more would only wait inside it. So what waits is a cursor per
 * list, not a pending promise, limiter wait and timer per address, however long the lists and however many
 * chunks a caller cuts them into. Lists are served earliest deadline first, then in arrival order: the
 * chunks of one request finish one after another, and a lookup with a short deadline is not held behind a
 * long list.
 */
class LookupQueue {
  readonly #workers: number;
  readonly #clock: Clock;
  #busy = 0;
  /** Lists that may have addresses left to take, in the order they are served. */
  readonly #lists: QueuedList[] = [];

  constructor(workers: number, clock: Clock) {
    this.#workers = Math.max(1, workers);
    this.#clock = clock;
  }

  lookup<T>(
    ips: readonly string[],
    options: LookupOptions,
    lookupOne: (ip: string, run: LookupRun) => Promise<SourceOutcome<T>>,
  ): Promise<Map<string, SourceOutcome<T>>> {
    const run = new LookupRun(options);
    const { signal } = run;
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    const distinct = [...new Set(ips)];
    const outcomes = new Array<SourceOutcome<T>>(distinct.length);
    const targets = distinct.map((ip, index) => {
      const canonical = canonicalIp(ip);
      if (canonical === null) outcomes[index] = notAnAddress();
      return canonical;
    });
    let open = targets.filter((target) => target !== null).length;
    let next = 0;
    let settled = false;
    return new Promise((resolve, reject) => {
      const answer = () => resolve(new Map(distinct.map((ip, index) => [ip, outcomes[index] as SourceOutcome<T>])));
      if (open === 0) {
        answer();
        return;
      }
      const settle = (error?: { reason: Error }) => {
        if (settled) return;
        settled = true;
        cancelExpiry();
        signal?.removeEventListener('abort', onAbort);
        if (error) reject(error.reason);
        else answer();
      };
      const onAbort = () => settle({ reason: signal?.reason as Error });
      const list: QueuedList = {
        deadline: run.deadline,
        // Nothing more is taken from a settled list; the queue drops it when it comes to it.
        take: () => {
          while (next < targets.length && targets[next] === null) next += 1;
          if (settled || next >= targets.length) return undefined;
          const index = next++;
          const ip = targets[index] as string;
          return async () => {
            try {
              outcomes[index] = await lookupOne(ip, run);
            } catch (error) {
              settle({ reason: error as Error });
              return;
            }
            open -= 1;
            if (open === 0) settle();
          };
        },
      };
      // At the deadline, requests still in flight are given up, and a list still waiting for a worker is
      // answered then, not when a worker comes to it: past the deadline the limiter refuses its first
      // address at once, and the run answers the rest, so asking them all now sends nothing and needs no worker.
      const cancelExpiry = this.#clock.schedule(run.deadline + 1 - this.#clock.now(), () => {
        run.expire();
        void this.#drain(list);
      });
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#enqueue(list);
      this.#start();
    });
  }

  #enqueue(list: QueuedList): void {
    const later = this.#lists.findIndex((queued) => queued.deadline > list.deadline);
    this.#lists.splice(later === -1 ? this.#lists.length : later, 0, list);
  }

  #take(): Task | undefined {
    for (let head = this.#lists[0]; head !== undefined; head = this.#lists[0]) {
      const task = head.take();
      if (task) return task;
      this.#lists.shift();
    }
    return undefined;
  }

  #start(): void {
    while (this.#busy < this.#workers) {
      const task = this.#take();
      if (!task) return;
      this.#busy += 1;
      void this.#work(task);
    }
  }

  async #work(first: Task): Promise<void> {
    for (let task: Task | undefined = first; task; task = this.#take()) await task();
    this.#busy -= 1;
  }

  async #drain(list: QueuedList): Promise<void> {
    for (let task = list.take(); task; task = list.take()) await task();
  }
}

/** A JSON object from a body, or undefined when the body is not one. */
export function parseJsonObject(body: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(body);
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** A trimmed non-empty string, or null. */
export function text(value: unknown): string | null {
  return typeof value === 'string' && value.trim() !== '' ? value.trim() : null;
}

/** undici's codes for a stage of a request that outlasted its timeout. */
const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

function errorCode(error: unknown): string | undefined {
  const code = error instanceof Error ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : undefined;
}

function describeFailure(error: unknown): string {
  if (!(error instanceof Error)) return 'request failed';
  const code = errorCode(error);
  return code !== undefined ? `request failed (${code})` : `request failed (${error.message})`;
}

/**
 * One upstream spoken to over keep-alive HTTP: every attempt goes through the limiter, 429/401 are reported
 * to it, and failures are retried a bounded number of times without waiting past the caller's deadline.
 */
export class HttpUpstream {
  readonly #baseUrl: string;
  readonly #headers: Record<string, string>;
  readonly #limiter: AdaptiveLimiter;
  readonly #clock: Clock;
  readonly #timeoutMs: number;
  readonly #retries: number;
  readonly #retryDelayMs: number;
  readonly #logger: FastifyBaseLogger | undefined;
  readonly #agent: Agent;
  readonly #queue: LookupQueue;
  #disabledReason: string | undefined;

  constructor(options: HttpUpstreamOptions) {
    this.#baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.#headers = options.headers;
    this.#limiter = options.limiter;
    this.#clock = options.clock ?? systemClock;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#retries = options.retries ?? 2;
    this.#retryDelayMs = options.retryDelayMs ?? 250;
    this.#logger = options.logger;
    // undici's own timers for each stage, shared by the requests of a connection: a timeout needs no
    // AbortSignal (and no DOMException when it fires) per request.
    this.#agent = new Agent({
      keepAliveTimeout: 30_000,
      connect: { timeout: this.#timeoutMs },
      headersTimeout: this.#timeoutMs,
      bodyTimeout: this.#timeoutMs,
    });
    this.#queue = new LookupQueue(this.#limiter.maxInFlight, this.#clock);
  }

  /**
   * Looks up every distinct address of a list through this upstream's queue and answers by the address as
   * given; anything that is not an IP address never reaches a URL. `lookupOne` gets the canonical address
   * and the lookup's run, which it hands to `get`.
   */
  lookupEach<T>(
    ips: readonly string[],
    options: LookupOptions,
    lookupOne: (ip: string, run: LookupRun) => Promise<SourceOutcome<T>>,
  ): Promise<Map<string, SourceOutcome<T>>> {
    return this.#queue.lookup(ips, options, lookupOne);
  }

  get disabledReason(): string | undefined {
    return this.#disabledReason;
  }

  /** Stops every further request, including those already waiting for the limiter. */
  disable(reason: string): void {
    if (this.#disabledReason !== undefined) return;
    this.#disabledReason = reason;
    this.#logger?.error({ upstream: this.#baseUrl }, reason);
  }

  async get<T>(
    path: string,
    run: LookupRun,
    interpret: (answer: UpstreamAnswer) => Verdict<T>,
  ): Promise<SourceOutcome<T>> {
    const { deadline, signal } = run;
    let last: SourceOutcome<T> = { status: 'error', error: 'no attempt made' };
    for (let attempt = 0; attempt <= this.#retries; attempt += 1) {
      if (attempt > 0) {
        const pause = this.#retryDelayMs * 2 ** (attempt - 1);
        if (this.#clock.now() + pause >= deadline) break;
        await this.#clock.sleep(pause, signal);
      }
      if (this.#disabledReason !== undefined) return { status: 'disabled', reason: this.#disabledReason };
      if (run.refusedUntil !== undefined) return { status: 'rate_limited', retryAt: new Date(run.refusedUntil).toISOString() };
      const admission = await this.#limiter.acquire(deadline, signal);
      // The upstream may have been switched off while this request waited for the limiter.
      if (this.#disabledReason !== undefined) {
        if (admission.ok) admission.release();
        return { status: 'disabled', reason: this.#disabledReason };
      }
      if (!admission.ok) {
        run.refuse(admission.retryAt);
        return { status: 'rate_limited', retryAt: new Date(admission.retryAt).toISOString() };
      }
      let answer: UpstreamAnswer | { failure: string };
      try {
        answer = await this.#send(path, run);
      } finally {
        admission.release();
      }
      if ('failure' in answer) {
        await this.#limiter.report('error');
        last = { status: 'error', error: answer.failure };
      } else if (answer.statusCode === 429) {
        const blockedUntil = await this.#limiter.report('limited', answer.headers['retry-after']);
        last = { status: 'rate_limited', retryAt: new Date(blockedUntil ?? this.#clock.now()).toISOString() };
      } else if (answer.statusCode >= 500) {
        await this.#limiter.report('error');
        last = { status: 'error', error: `HTTP ${answer.statusCode}` };
      } else {
        if (answer.statusCode === 401) await this.#limiter.report('unauthorized', answer.headers['retry-after']);
        else await this.#limiter.report('ok');
        const verdict = interpret(answer);
        if (verdict.status !== 'retry') return verdict;
        last = { status: 'error', error: verdict.error };
      }
      this.#logger?.debug({ upstream: this.#baseUrl, path, attempt, outcome: last }, 'upstream attempt failed');
    }
    return last;
  }

  async close(): Promise<void> {
    await this.#agent.close();
  }

  async #send(path: string, run: LookupRun): Promise<UpstreamAnswer | { failure: string }> {
    try {
      const response = await request(`${this.#baseUrl}${path}`, {
        dispatcher: this.#agent,
        method: 'GET',
        headers: this.#headers,
        signal: run.requestSignal,
      });
      const body = await response.body.text();
      return { statusCode: response.statusCode, headers: response.headers, body };
    } catch (error) {
      run.signal?.throwIfAborted();
      if (run.expired) return { failure: 'no answer before the deadline' };
      if (TIMEOUT_CODES.has(errorCode(error) ?? '')) return { failure: `timeout after ${this.#timeoutMs} ms` };
      return { failure: describeFailure(error) };
    }
  }
}
