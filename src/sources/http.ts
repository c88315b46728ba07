import type { FastifyBaseLogger } from 'fastify';
import { Agent, request } from 'undici';
import { systemClock, type Clock } from '../clock.js';
import { canonicalIp } from '../ip/address.js';
import type { AdaptiveLimiter } from '../limiter/adaptive.js';
import type { SourceOutcome } from '../record/model.js';

export interface SourceAvailability {
  status: 'ready' | 'disabled' | 'unavailable';
  reason?: string;
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
   * sending, and waiting for each further piece of the body (default 10 s).
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

  constructor(options: LookupOptions) {
    this.deadline = options.deadline;
    this.signal = options.signal;
  }

  /** When the limiter said the next request could go, once it has refused one of this lookup's. */
  get refusedUntil(): number | undefined {
    return this.#refusedUntil;
  }

  refuse(retryAt: number): void {
    this.#refusedUntil ??= retryAt;
  }
}

/**
 * Looks up every distinct address and answers by the address as given. At most `concurrency` workers (the
 * limiter's in-flight cap: more would only queue inside it) take the addresses in turn, so that what a
 * lookup holds while it runs grows with that cap, not with the length of the list. Anything that is not an
 * IP address never reaches a URL.
 */
export async function lookupEach<T>(
  ips: readonly string[],
  options: LookupOptions & { concurrency: number },
  lookupOne: (ip: string, run: LookupRun) => Promise<SourceOutcome<T>>,
): Promise<Map<string, SourceOutcome<T>>> {
  const distinct = [...new Set(ips)];
  const outcomes = new Array<SourceOutcome<T>>(distinct.length);
  const run = new LookupRun(options);
  let next = 0;
  let failed = false;
  const work = async () => {
    while (next < distinct.length && !failed) {
      const index = next++;
      const canonical = canonicalIp(distinct[index] as string);
      try {
        outcomes[index] = canonical === null ? { status: 'error', error: 'not an IP address' } : await lookupOne(canonical, run);
      } catch (error) {
        // An aborted lookup (or a bug) ends every worker at its next address, not after the whole list.
        failed = true;
        throw error;
      }
    }
  };
  const workers = Math.max(1, Math.min(options.concurrency, distinct.length));
  await Promise.all(Array.from({ length: workers }, work));
  return new Map(distinct.map((ip, index) => [ip, outcomes[index] as SourceOutcome<T>]));
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
  }

  /** How many requests the limiter lets be in flight at once, and so how many addresses are worth asking for in parallel. */
  get maxInFlight(): number {
    return this.#limiter.maxInFlight;
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
        answer = await this.#send(path, signal);
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

  async #send(path: string, signal: AbortSignal | undefined): Promise<UpstreamAnswer | { failure: string }> {
    try {
      const response = await request(`${this.#baseUrl}${path}`, {
        dispatcher: this.#agent,
        method: 'GET',
        headers: this.#headers,
        signal,
      });
      const body = await response.body.text();
      return { statusCode: response.statusCode, headers: response.headers, body };
    } catch (error) {
      signal?.throwIfAborted();
      if (TIMEOUT_CODES.has(errorCode(error) ?? '')) return { failure: `timeout after ${this.#timeoutMs} ms` };
      return { failure: describeFailure(error) };
    }
  }
}
