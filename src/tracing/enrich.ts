import type { EnrichStats } from '../enrich/stats.js';
import { activeTracer, failSpan, inSpan } from './spans.js';

/**
 * Spans of the cascade (src/enrich/cascade.ts) and of the cache tiers (src/cache/tiered-loader.ts). Each
 * helper is the one call its seam makes; with tracing off it is the work itself.
 */

/** `enrich`: one request, or one chunk of a job, from parsing to the last record written and cached. */
export function traceEnrich<T extends { stats: EnrichStats }>(kind: 'request' | 'job', addresses: number, work: () => Promise<T>): Promise<T> {
  const tracer = activeTracer();
  if (tracer === undefined) return work();
  return inSpan(tracer, 'enrich', { 'ipenrich.kind': kind, 'ipenrich.addresses': addresses }, work, (span, { stats }) => {
    span.setAttributes({
      'ipenrich.unique': stats.unique,
      'ipenrich.invalid': stats.invalid,
      'ipenrich.bogon': stats.bogon,
      // The process-local copy of L1 is read without a span of its own (no I/O, no await); its hits are here.
      'ipenrich.l1.hits': stats.tiers.l1.hits,
      'ipenrich.l1.misses': stats.tiers.l1.misses,
      'ipenrich.l2.hits': stats.tiers.l2.hits,
      'ipenrich.l2.misses': stats.tiers.l2.misses,
    });
  });
}

/**
 * `chunk`: one Team Cymru query's worth of a list, from the moment it is queued behind the chunk before it
 * to its records cached. The cascade hands back two promises, when the chunk is collected and when it is
 * done; the span ends with the second.
 */
export function traceChunk<T extends { done: Promise<unknown> }>(addresses: number, work: () => T): T {
  const tracer = activeTracer();
  if (tracer === undefined) return work();
  return tracer.startActiveSpan('chunk', { attributes: { 'ipenrich.addresses': addresses } }, (span) => {
    const chunk = work();
    chunk.done.then(
      () => span.end(),
      (error: unknown) => {
        failSpan(span, error);
        span.end();
      },
    );
    return chunk;
  });
}

/** `cache.l1` / `cache.l2`: one read of a tier for a list of addresses; a hit is an address it held. */
export function traceTierRead<T extends ReadonlyMap<string, unknown>>(tier: 'l1' | 'l2', addresses: number, read: () => Promise<T>): Promise<T> {
  const tracer = activeTracer();
  if (tracer === undefined) return read();
  return inSpan(tracer, `cache.${tier}`, { 'ipenrich.cache.tier': tier, 'ipenrich.addresses': addresses }, read, (span, found) => {
    span.setAttributes({ 'ipenrich.cache.hits': found.size, 'ipenrich.cache.misses': addresses - found.size });
  });
}
