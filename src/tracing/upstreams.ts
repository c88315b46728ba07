import { context, createContextKey, trace } from '@opentelemetry/api';
import type { SourceOutcome } from '../record/model.js';
import { activeTracer, failSpan, inSpan } from './spans.js';

/**
 * Spans of the upstream calls: each Team Cymru bulk query (src/sources/cymru.ts) and each GreyNoise or
 * DShield lookup (src/sources/greynoise.ts, dshield.ts, with what src/sources/http.ts learns on the way).
 * Nothing of a request's headers is recorded: they hold the GreyNoise key and the DShield contact.
 */

/** What one bulk exchange brought back, as CymruClient's query resolves it. */
interface BulkAnswer {
  rows: ReadonlyMap<string, unknown>;
  failure?: string;
  /** How long the query waited for one of the client's connections before its own opened. */
  waitedMs: number;
}

/**
 * `cymru.query`: one attempt of a batch, from the moment it is asked for (it may first wait for a free
 * connection, `ipenrich.cymru.wait_ms`) to the end of its TCP exchange with Team Cymru's bulk whois.
 */
export function traceCymruQuery<T extends BulkAnswer>(addresses: number, attempt: number, query: () => Promise<T>): Promise<T> {
  const tracer = activeTracer();
  if (tracer === undefined) return query();
  const attributes = { 'ipenrich.addresses': addresses, 'ipenrich.cymru.attempt': attempt };
  return inSpan(tracer, 'cymru.query', attributes, query, (span, { rows, failure, waitedMs }) => {
    // An exchange that ends cleanly without one row is failed too: the client asks those addresses again.
    const reason = failure ?? (rows.size === 0 && addresses > 0 ? 'no parseable row in the answer' : undefined);
    span.setAttributes({
      'ipenrich.cymru.rows': rows.size,
      'ipenrich.cymru.outcome': reason === undefined ? 'ok' : 'failed',
      'ipenrich.cymru.wait_ms': Math.round(waitedMs * 100) / 100,
    });
    if (reason !== undefined) failSpan(span, reason, 'cymru.failure');
  });
}

/** What a GreyNoise or DShield call has met so far: kept in its span's context for http.ts to add to. */
interface CallState {
  attempts: number;
  limiterWaitMs: number;
  statusCode: number | undefined;
  retryAfter: string | undefined;
}

const CALL = createContextKey('ipenrich upstream call');

/**
 * `greynoise` / `dshield`: one address asked of a rate-limited upstream, its retries included. The span says
 * how it ended, the last HTTP status, how long the limiter held it back, and the last Retry-After received.
 */
export function traceUpstreamCall<T>(source: 'greynoise' | 'dshield', call: () => Promise<SourceOutcome<T>>): Promise<SourceOutcome<T>> {
  const tracer = activeTracer();
  if (tracer === undefined) return call();
  const state: CallState = { attempts: 0, limiterWaitMs: 0, statusCode: undefined, retryAfter: undefined };
  return inSpan(
    tracer,
    source,
    { 'ipenrich.upstream.source': source },
    () => context.with(context.active().setValue(CALL, state), call),
    (span, outcome) => {
      span.setAttributes({
        'ipenrich.upstream.outcome': outcome.status,
        'ipenrich.upstream.attempts': state.attempts,
        'ipenrich.limiter.wait_ms': Math.round(state.limiterWaitMs * 100) / 100,
      });
      if (state.statusCode !== undefined) span.setAttribute('http.response.status_code', state.statusCode);
      if (state.retryAfter !== undefined) span.setAttribute('ipenrich.upstream.retry_after', state.retryAfter);
      if (outcome.status === 'error') failSpan(span, outcome.error, 'upstream.failure');
    },
  );
}

/** The call under way in this context, when tracing is on (a probe of a refused key runs outside any call). */
function callState(): CallState | undefined {
  if (activeTracer() === undefined) return undefined;
  return context.active().getValue(CALL) as CallState | undefined;
}

/**
 * The limiter's admission of one attempt, handed through unchanged: the time until it settles counts as time
 * the call waited for the limiter. An admission given at once (not a promise) waited for nothing.
 */
export function timeLimiterWait<T>(admission: T | Promise<T>): T | Promise<T> {
  const call = callState();
  if (call === undefined || !(admission instanceof Promise)) return admission;
  const started = performance.now();
  return admission.then((admitted) => {
    call.limiterWaitMs += performance.now() - started;
    return admitted;
  });
}

/** One answer of the upstream (or the failure to get one), as http.ts received it. */
export function noteUpstreamAnswer(answer: { statusCode: number; headers: Record<string, string | string[] | undefined> } | { failure: string }): void {
  const call = callState();
  if (call === undefined) return;
  call.attempts += 1;
  const span = trace.getActiveSpan();
  if ('failure' in answer) {
    span?.addEvent('attempt', { 'ipenrich.upstream.failure': answer.failure });
    return;
  }
  call.statusCode = answer.statusCode;
  const header = answer.headers['retry-after'];
  const retryAfter = Array.isArray(header) ? header.join(', ') : header;
  if (retryAfter !== undefined) call.retryAfter = retryAfter;
  span?.addEvent('attempt', {
    'http.response.status_code': answer.statusCode,
    ...(retryAfter === undefined ? {} : { 'ipenrich.upstream.retry_after': retryAfter }),
  });
}
