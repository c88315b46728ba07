import { setMaxListeners } from 'node:events';
import { systemClock, type Clock } from '../clock.js';
import type { LookupOptions } from '../enrich/sources.js';
import { canonicalIp } from '../ip/address.js';
import type { SourceOutcome } from '../record/model.js';
import { AdaptiveLimiter, type Admission, type LimiterOptions } from './adaptive.js';

/**
 * The addresses of one lookup, which share its deadline and signal. Once the limiter turns one of them away
 * because the earliest moment it could go (by the budget, a block, or a free in-flight slot) is past the
 * deadline, it would turn away every later one too: neither the budget's next moment nor a block ever moves
 * earlier, and the deadline has not moved. So the rest are answered at once with the same retryAt.
 */
export class LookupRun implements LookupOptions {
  readonly deadline: number;
  /**
   * Follows the caller's signal. The run's waits listen on a signal of its own, whose listener limit can be
   * set to what the run adds: the caller's may be shared with more than this run.
   */
  readonly signal: AbortSignal | undefined;
  /**
   * The most listeners the run hangs on one of its signals at once: the lookup's own, and per worker a wait
   * or a request, plus the listener undici leaves on a finished request until its body stream closes (a tick
   * after the body was read, when the worker may have sent its next request). Past 10 Node would warn of a
   * leak that is none.
   */
  readonly #listeners: number;
  #refusal: Admission | undefined;
  readonly #expiry = new AbortController();
  #requestSignal: AbortSignal | undefined;

  /** `concurrency`: the most requests of this run in flight at once. */
  constructor(options: LookupOptions, concurrency = 1) {
    this.deadline = options.deadline;
    this.#listeners = 2 * concurrency + 1;
    this.signal = options.signal && this.#own(AbortSignal.any([options.signal]));
  }

  /**
   * What a request of this lookup is sent with: aborted by the caller's signal, and when the deadline
   * passes, so that an upstream that is slow to answer (or trickles its body) holds no answer past it.
   */
  get requestSignal(): AbortSignal {
    this.#requestSignal ??= this.#own(this.signal ? AbortSignal.any([this.signal, this.#expiry.signal]) : this.#expiry.signal);
    return this.#requestSignal;
  }

  get expired(): boolean {
    return this.#expiry.signal.aborted;
  }

  /** The deadline has passed: requests still in flight are given up. */
  expire(): void {
    this.#expiry.abort(new Error('the deadline passed'));
  }

  /** The answer for every further address, once the limiter has refused one of this lookup's. */
  get refusal(): Admission | undefined {
    return this.#refusal;
  }

  /** The limiter refused an address of this lookup: the next request could go at `retryAt`. */
  refuse(retryAt: number): void {
    this.#refusal ??= { ok: false, retryAt };
  }

  #own(signal: AbortSignal): AbortSignal {
    setMaxListeners(this.#listeners, signal);
    return signal;
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
    const run = new LookupRun(options, this.#workers);
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

/**
 * The one way a request reaches an upstream: lists of addresses wait in an earliest-deadline-first queue,
 * the limiter (token bucket, in-flight cap, blocks after 429/401; shared through Redis when given) decides
 * when each request may go, and a list the limiter has refused once is refused for the rest.
 */
export class UpstreamAdmission {
  readonly #limiter: AdaptiveLimiter;
  readonly #queue: LookupQueue;
  /** Addresses refused because their list already was: the limiter never saw them. */
  #refusedWithList = 0;

  constructor(options: LimiterOptions) {
    this.#limiter = new AdaptiveLimiter(options);
    this.#queue = new LookupQueue(this.#limiter.maxInFlight, options.clock ?? systemClock);
  }

  /**
   * Looks up every distinct address of a list through the queue and answers by the address as given;
   * anything that is not an IP address is answered without `lookupOne`, which gets the canonical address
   * and the lookup's run to pass to `acquire`.
   */
  lookupEach<T>(
    ips: readonly string[],
    options: LookupOptions,
    lookupOne: (ip: string, run: LookupRun) => Promise<SourceOutcome<T>>,
  ): Promise<Map<string, SourceOutcome<T>>> {
    return this.#queue.lookup(ips, options, lookupOne);
  }

  /**
   * Waits for the limiter to let one request of `run` go (see AdaptiveLimiter.acquire). Once it has refused
   * one of the run's, every further one is refused with the same retryAt without asking it, and then the
   * answer is no promise: a long list is refused without a turn of the event loop per address.
   */
  acquire(run: LookupRun): Admission | Promise<Admission> {
    const refusal = run.refusal;
    if (refusal === undefined) return this.#limiter.acquire(run.deadline, run.signal, run);
    this.#refusedWithList += 1;
    return refusal;
  }

  /** See AdaptiveLimiter.report. */
  report(outcome: 'ok' | 'limited' | 'unauthorized' | 'error', retryAfter?: string | string[]): Promise<number | undefined> {
    return this.#limiter.report(outcome, retryAfter);
  }

  state(): ReturnType<AdaptiveLimiter['state']> {
    return this.#limiter.state();
  }

  /** admitted: requests let go; refused: every address turned away, by the limiter or with its list. */
  stats(): { admitted: number; refused: number } {
    const { admitted, limited } = this.#limiter.stats();
    return { admitted, refused: limited + this.#refusedWithList };
  }
}
