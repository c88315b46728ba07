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
  /** Per request, in real time (default 10 s). */
  timeoutMs?: number;
  /** Extra attempts after a 429, a 5xx, a timeout or unreadable JSON (default 2). */
  retries?: number;
  /** Pause before the first retry, doubled for each further one (default 250 ms). */
  retryDelayMs?: number;
  logger?: FastifyBaseLogger;
}

/**
 * Looks up every distinct address concurrently and answers by the address as given. The concurrency is
 * bounded by the source's limiter, not here. Anything that is not an IP address never reaches a URL.
 */
export async function lookupEach<T>(
  ips: readonly string[],
  lookupOne: (ip: string) => Promise<SourceOutcome<T>>,
): Promise<Map<string, SourceOutcome<T>>> {
  const distinct = [...new Set(ips)];
  const outcomes = await Promise.all(
    distinct.map((ip): Promise<SourceOutcome<T>> => {
      const canonical = canonicalIp(ip);
      return canonical === null ? Promise.resolve({ status: 'error', error: 'not an IP address' }) : lookupOne(canonical);
    }),
  );
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

function describeFailure(error: unknown): string {
  if (!(error instanceof Error)) return 'request failed';
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? `request failed (${code})` : `request failed (${error.message})`;
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
  readonly #agent = new Agent({ keepAliveTimeout: 30_000 });
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
    options: LookupOptions,
    interpret: (answer: UpstreamAnswer) => Verdict<T>,
  ): Promise<SourceOutcome<T>> {
    const { deadline, signal } = options;
    let last: SourceOutcome<T> = { status: 'error', error: 'no attempt made' };
    for (let attempt = 0; attempt <= this.#retries; attempt += 1) {
      if (attempt > 0) {
        const pause = this.#retryDelayMs * 2 ** (attempt - 1);
        if (this.#clock.now() + pause >= deadline) break;
        await this.#clock.sleep(pause, signal);
      }
      if (this.#disabledReason !== undefined) return { status: 'disabled', reason: this.#disabledReason };
      const admission = await this.#limiter.acquire(deadline, signal);
      // The upstream may have been switched off while this request waited for the limiter.
      if (this.#disabledReason !== undefined) {
        if (admission.ok) admission.release();
        return { status: 'disabled', reason: this.#disabledReason };
      }
      if (!admission.ok) return { status: 'rate_limited', retryAt: new Date(admission.retryAt).toISOString() };
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
    const timeout = AbortSignal.timeout(this.#timeoutMs);
    try {
      const response = await request(`${this.#baseUrl}${path}`, {
        dispatcher: this.#agent,
        method: 'GET',
        headers: this.#headers,
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
      const body = await response.body.text();
      return { statusCode: response.statusCode, headers: response.headers, body };
    } catch (error) {
      signal?.throwIfAborted();
      if (timeout.aborted) return { failure: `timeout after ${this.#timeoutMs} ms` };
      return { failure: describeFailure(error) };
    }
  }
}
