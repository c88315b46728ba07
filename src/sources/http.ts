import type { FastifyBaseLogger } from 'fastify';
import { Agent, request } from 'undici';
import { systemClock, type Clock } from '../clock.js';
import type { LookupOptions, SourceAvailability } from '../enrich/sources.js';
import { LookupRun, type UpstreamAdmission } from '../limiter/admission.js';
import type { SourceOutcome } from '../record/model.js';
import { noteUpstreamAnswer, timeLimiterWait } from '../tracing/upstreams.js';
import { PRODUCT } from '../version.js';
import { SharedLookups } from './shared-lookups.js';

export interface UpstreamAnswer {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/**
 * What a source makes of an answer: an outcome; 'retry' when the upstream sent something unreadable;
 * 'refused' when it refused our credentials, which switches the upstream off until a probe finds them
 * accepted again.
 */
export type Verdict<T> = SourceOutcome<T> | { status: 'retry'; error: string } | { status: 'refused'; reason: string };

export interface HttpUpstreamOptions {
  /** Scheme, host and optional path prefix; request paths are appended. */
  baseUrl: string;
  headers: Record<string, string>;
  admission: UpstreamAdmission;
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
  /** After our credentials were refused, how long until one request probes them again (default 15 min). */
  reprobeMs?: number;
  logger?: FastifyBaseLogger;
}

/** How the service names itself to an upstream, with a contact for one that asks for it. */
export function userAgent(version: string, contact?: string): string {
  return contact === undefined ? `${PRODUCT}/${version}` : `${PRODUCT}/${version} (${contact})`;
}

const READY: SourceAvailability = { status: 'ready' };

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
 * One upstream spoken to over keep-alive HTTP: every attempt goes through its admission, 429/401 are
 * reported to the limiter, failures are retried a bounded number of times and 429s as long as the limiter
 * admits, never waiting past the caller's deadline.
 */
export class HttpUpstream {
  readonly #baseUrl: string;
  readonly #headers: Record<string, string>;
  readonly #admission: UpstreamAdmission;
  readonly #shared: SharedLookups;
  readonly #clock: Clock;
  readonly #timeoutMs: number;
  readonly #retries: number;
  readonly #retryDelayMs: number;
  readonly #reprobeMs: number;
  readonly #logger: FastifyBaseLogger | undefined;
  readonly #agent: Agent;
  /** While the upstream refuses our credentials: the answer for every address, and the availability. */
  #refused: { status: 'disabled'; reason: string; refused: true } | undefined;
  #cancelProbe: (() => void) | undefined;
  #closed = false;

  constructor(options: HttpUpstreamOptions) {
    this.#baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.#headers = options.headers;
    this.#admission = options.admission;
    this.#shared = new SharedLookups(options.admission);
    this.#clock = options.clock ?? systemClock;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#retries = options.retries ?? 2;
    this.#retryDelayMs = options.retryDelayMs ?? 250;
    this.#reprobeMs = options.reprobeMs ?? 900_000;
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

  /**
   * See UpstreamAdmission.lookupEach, with the addresses other lookups are asking for already shared
   * (SharedLookups); `lookupOne` hands the run to `get`.
   */
  lookupEach<T>(
    ips: readonly string[],
    options: LookupOptions,
    lookupOne: (ip: string, run: LookupRun) => Promise<SourceOutcome<T>>,
  ): Promise<Map<string, SourceOutcome<T>>> {
    return this.#shared.lookupEach(ips, options, lookupOne);
  }

  availability(): SourceAvailability {
    return this.#refused ?? READY;
  }

  get<T>(path: string, run: LookupRun, interpret: (answer: UpstreamAnswer) => Verdict<T>): Promise<SourceOutcome<T>> {
    return this.#attempts(path, run, interpret, false);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#cancelProbe?.();
    await this.#agent.close();
  }

  /** `probe`: sent although the upstream refused our credentials, to learn whether it still does. */
  async #attempts<T>(
    path: string,
    run: LookupRun,
    interpret: (answer: UpstreamAnswer) => Verdict<T>,
    probe: boolean,
  ): Promise<SourceOutcome<T>> {
    const { deadline, signal } = run;
    let last: SourceOutcome<T>;
    // A 429 is no failure of the upstream and spends none of the retries: the limiter holds the next attempt
    // until the block ends and refuses it when that is past the deadline, so a request that loses the race
    // for a freed budget to other callers tries again for as long as its deadline allows.
    for (let attempt = 0, failures = 0, unblocked = 0; ; attempt += 1) {
      if (this.#refused && !probe) return this.#refused;
      const pending = timeLimiterWait(this.#admission.acquire(run));
      const admission = pending instanceof Promise ? await pending : pending;
      // The upstream may have been switched off while this request waited for the limiter.
      if (this.#refused && !probe) {
        if (admission.ok) admission.release();
        return this.#refused;
      }
      if (!admission.ok) return { status: 'rate_limited', retryAt: new Date(admission.retryAt).toISOString() };
      let answer: UpstreamAnswer | { failure: string };
      try {
        answer = await this.#send(path, run);
        noteUpstreamAnswer(answer);
      } finally {
        admission.release();
      }
      if ('failure' in answer) {
        await this.#admission.report('error');
        last = { status: 'error', error: answer.failure };
      } else if (answer.statusCode === 429) {
        const blockedUntil = await this.#admission.report('limited', answer.headers['retry-after']);
        last = { status: 'rate_limited', retryAt: new Date(blockedUntil ?? this.#clock.now()).toISOString() };
        this.#logger?.debug({ upstream: this.#baseUrl, path, attempt, retryAt: last.retryAt }, 'upstream answered 429');
        // An upstream that asks for no wait at all (`Retry-After: 0`) is not asked again at the full rate:
        // the attempt waits the growing pause of a failed one.
        if (blockedUntil === undefined) {
          unblocked += 1;
          if (!(await this.#paused(unblocked, deadline, signal))) return last;
        }
        continue;
      } else if (answer.statusCode >= 500) {
        await this.#admission.report('error');
        last = { status: 'error', error: `HTTP ${answer.statusCode}` };
      } else {
        if (answer.statusCode === 401) await this.#admission.report('unauthorized', answer.headers['retry-after']);
        else await this.#admission.report('ok');
        const verdict = interpret(answer);
        if (verdict.status === 'refused') return this.#refuse(verdict.reason, path, interpret);
        if (verdict.status !== 'retry') return verdict;
        last = { status: 'error', error: verdict.error };
      }
      this.#logger?.debug({ upstream: this.#baseUrl, path, attempt, outcome: last }, 'upstream attempt failed');
      failures += 1;
      if (failures > this.#retries || !(await this.#paused(failures, deadline, signal))) return last;
    }
  }

  /** Waits the pause before the nth repeat of an attempt; false, without waiting, when it would end past the deadline. */
  async #paused(nth: number, deadline: number, signal: AbortSignal | undefined): Promise<boolean> {
    const pause = this.#retryDelayMs * 2 ** (nth - 1);
    if (this.#clock.now() + pause >= deadline) return false;
    await this.#clock.sleep(pause, signal);
    return true;
  }

  /**
   * Every further request would be refused the same way and spend the budget of a valid key holder, so none
   * is sent, including those waiting for the limiter, until a probe of the refused request finds our
   * credentials accepted again.
   */
  #refuse<T>(reason: string, path: string, interpret: (answer: UpstreamAnswer) => Verdict<T>): SourceOutcome<T> {
    if (this.#refused) return this.#refused;
    this.#refused = { status: 'disabled', reason, refused: true };
    this.#logger?.error(
      { upstream: this.#baseUrl, reprobeMs: this.#reprobeMs },
      `${reason}: switched off until a probe finds our credentials accepted`,
    );
    this.#probeLater(path, interpret);
    return this.#refused;
  }

  #probeLater<T>(path: string, interpret: (answer: UpstreamAnswer) => Verdict<T>): void {
    if (this.#closed) return;
    this.#cancelProbe = this.#clock.schedule(this.#reprobeMs, () => void this.#probe(path, interpret));
  }

  async #probe<T>(path: string, interpret: (answer: UpstreamAnswer) => Verdict<T>): Promise<void> {
    // Not on any caller's request: it may wait for the budget as long as a request may take.
    const outcome = await this.#attempts(path, new LookupRun({ deadline: this.#clock.now() + this.#timeoutMs }), interpret, true);
    if (outcome.status === 'ok' || outcome.status === 'not_found') {
      this.#refused = undefined;
      this.#logger?.info({ upstream: this.#baseUrl }, 'the upstream accepts our credentials again: switched back on');
      return;
    }
    const found = outcome.status === 'disabled' ? 'our credentials still refused' : 'no answer';
    this.#logger?.warn({ upstream: this.#baseUrl, outcome, reprobeMs: this.#reprobeMs }, `the probe found ${found}: still off`);
    this.#probeLater(path, interpret);
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
