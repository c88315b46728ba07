import type * as FastifyOtel from '@fastify/otel';
import { ProxyTracerProvider, trace } from '@opentelemetry/api';
import type * as InstrumentationPg from '@opentelemetry/instrumentation-pg';
import type * as NodeSdk from '@opentelemetry/sdk-node';
import { createRequire } from 'node:module';
import { PRODUCT, VERSION } from '../version.js';
import { useTracer } from './spans.js';

/**
 * The SDK, the exporters and the instrumentations are loaded only when tracing starts: loading them took
 * 290 ms and 39 MB of RSS in every process, traced or not. They are required, not imported: they are
 * CommonJS, so this is synchronous, and it has to be, since the modules src/server.ts imports after
 * src/tracing/start.ts would not wait for a top-level await (sibling modules are evaluated in order, but an
 * asynchronous one does not hold the next back), and `pg` would be loaded before its instrumentation.
 */
const load = createRequire(import.meta.url);

export type Env = Record<string, string | undefined>;

/** Tracing as started for this process. */
export interface Tracing {
  /** The Fastify plugin that makes the HTTP request span (registered by src/plugins/app/tracing.ts). */
  fastify: FastifyOtel.FastifyOtelInstrumentation;
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
  spanProcessors?: NodeSdk.tracing.SpanProcessor[];
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
  const { NodeSDK, resources } = load('@opentelemetry/sdk-node') as typeof NodeSdk;
  const { PgInstrumentation } = load('@opentelemetry/instrumentation-pg') as typeof InstrumentationPg;
  const { FastifyOtelInstrumentation } = load('@fastify/otel') as typeof FastifyOtel;
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
