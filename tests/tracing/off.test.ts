import { describe, expect, it } from 'vitest';
import { activeTracer } from '../../src/tracing/spans.js';
import { runningTracing, startTracing, tracingWanted } from '../../src/tracing/sdk.js';
import { startHarness } from '../support/app.js';

describe('tracing without an OTLP endpoint', () => {
  it('starts nothing: no SDK, no tracer for the spans, no request instrumentation in the app', async () => {
    expect(tracingWanted({})).toBe(false);
    expect(tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: '' })).toBe(false);
    expect(tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_SDK_DISABLED: 'true' })).toBe(false);
    expect(tracingWanted({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://127.0.0.1:4318/v1/traces' })).toBe(true);
    expect(startTracing({ OTEL_SERVICE_NAME: 'ip-enrich' })).toBeUndefined();
    expect(runningTracing()).toBeUndefined();
    expect(activeTracer()).toBeUndefined();

    const harness = await startHarness();
    try {
      expect(harness.app.hasPlugin('@fastify/otel')).toBe(false);
      const response = await harness.app.inject({ method: 'POST', url: '/enrich', payload: { ips: ['81.2.69.160'] } });
      expect(response.statusCode).toBe(200);
    } finally {
      await harness.close();
    }
  });
});
