import { FastifyOtelInstrumentation } from '@fastify/otel';
import { ProxyTracerProvider, trace } from '@opentelemetry/api';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';
import { NodeSDK, resources, type tracing } from '@opentelemetry/sdk-node';
import { PRODUCT, VERSION } from '../version.js';
import { useTracer } from './spans.js';

export type Env = Record<string, string | undefined>;

/** Tracing as started for this process. */
export interface Tracing {
  /** The Fastify plugin that makes the HTTP request span (registered by src/plugins/app/tracing.ts). */
  fastify: FastifyOtelInstrumentation;
  /** Hands every finished span to the exporter. */
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}

let started: Tracing | undefined;

/** Tracing of this process, if it was started. */
export function runningTracing(): Tracing | undefined {
  return started;
}

/**
 * Whether the environment asks for traces: an OTLP endpoint (for all signals or for traces) and the SDK not
 * switched off. Without one, nothing is started at all, so that tracing costs nothing.
 */
export function tracingWanted(env: Env): boolean {
  const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? env.OTEL_EXPORTER_OTLP_ENDPOINT;
  return endpoint !== undefined && endpoint.trim() !== '' && env.OTEL_SDK_DISABLED?.trim().toLowerCase() !== 'true';
}

export interface TracingOptions {
  /** In place of the OTLP exporter the OTEL_* variables describe (tests: an in-memory exporter). */
  spanProcessors?: tracing.SpanProcessor[];
}

/**
 * Starts OpenTelemetry's Node SDK for traces, configured by the standard OTEL_* variables (endpoint,
 * protocol, headers, sampler, resource attributes…): OTLP spans of the HTTP requests (@fastify/otel, a
 * Fastify plugin, no patching), of the PostgreSQL statements (the pg instrumentation, which patches `pg`
 * when it is loaded: this must run before anything imports it, see src/tracing/start.ts) and the service's
 * own spans. Metrics stay with Prometheus (GET /metrics) and logs with stdout: the SDK exports neither.
 */
export function startTracing(env: Env, options: TracingOptions = {}): Tracing | undefined {
  if (started) return started;
  if (options.spanProcessors === undefined && !tracingWanted(env)) return undefined;
  const fastify = new FastifyOtelInstrumentation({
    // Scrapes and probes every few seconds would bury the requests in traces of their own.
    ignorePaths: ({ url }) => url === '/metrics' || url === '/healthz' || url === '/readyz',
    // The request and its handler only: a span per hook (the validation, the metrics timer, the problem
    // handlers) costs a span each on every request and says nothing about where its time went.
    instrumentHooks: false,
  });
  const sdk = new NodeSDK({
    ...(env.OTEL_SERVICE_NAME === undefined ? { serviceName: PRODUCT } : {}),
    resource: resources.resourceFromAttributes({ 'service.version': VERSION }),
    spanProcessors: options.spanProcessors,
    metricReaders: [],
    logRecordProcessors: [],
    instrumentations: [
      fastify,
      // pg-boss polls its queue every few seconds: only statements inside a request or a job are traced.
      new PgInstrumentation({ requireParentSpan: true }),
    ],
  });
  sdk.start();
  useTracer(trace.getTracer(PRODUCT, VERSION));
  started = {
    fastify,
    flush: async () => {
      const provider = trace.getTracerProvider();
      const delegate = provider instanceof ProxyTracerProvider ? provider.getDelegate() : provider;
      await (delegate as { forceFlush?: () => Promise<void> }).forceFlush?.();
    },
    shutdown: async () => {
      useTracer(undefined);
      started = undefined;
      await sdk.shutdown();
    },
  };
  return started;
}
