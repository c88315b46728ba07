import { trace } from '@opentelemetry/api';
import { activeTracer } from './spans.js';

/** The ids of the span a log line is written in, under the names OpenTelemetry's log data model uses. */
function traceFields(): Record<string, string> {
  const span = trace.getActiveSpan();
  if (span === undefined) return {};
  const { traceId, spanId, traceFlags } = span.spanContext();
  return { trace_id: traceId, span_id: spanId, trace_flags: `0${traceFlags.toString(16)}` };
}

/**
 * The logger options with trace and span ids added to every line written inside a span (a pino mixin), when
 * tracing is on (a mixin of the caller's own wins); otherwise, or for a boolean, the options as they are, so that lines
 * cost nothing more.
 */
export function withTraceIds<T extends boolean | object | undefined>(logger: T): T {
  if (activeTracer() === undefined || typeof logger !== 'object') return logger;
  return { mixin: traceFields, ...logger };
}
