/**
 * Tracing for a test file, exported to memory: import this module first, before anything that loads `pg`,
 * as src/server.ts imports src/tracing/start.ts (the pg instrumentation patches `pg` when it is loaded).
 */
import { tracing } from '@opentelemetry/sdk-node';
import { startTracing } from '../../src/tracing/sdk.js';

export const exporter = new tracing.InMemorySpanExporter();
startTracing({}, { spanProcessors: [new tracing.SimpleSpanProcessor(exporter)] });

export type FinishedSpan = tracing.ReadableSpan;

/** The finished spans of one trace, with a way to walk it from its root. */
export class SpanTree {
  readonly spans: FinishedSpan[];

  constructor(traceId: string) {
    this.spans = exporter.getFinishedSpans().filter((span) => span.spanContext().traceId === traceId);
  }

  /** The trace whose root span has this name and started last. */
  static latest(rootName: string): SpanTree {
    const roots = exporter.getFinishedSpans().filter((span) => span.name === rootName && span.parentSpanContext === undefined);
    const root = roots.at(-1);
    if (!root) throw new Error(`no finished trace with a root span "${rootName}"`);
    return new SpanTree(root.spanContext().traceId);
  }

  named(name: string): FinishedSpan[] {
    return this.spans.filter((span) => span.name === name);
  }

  one(name: string): FinishedSpan {
    const found = this.named(name);
    if (found.length !== 1) throw new Error(`${found.length} spans named "${name}" in the trace: ${this.spans.map((s) => s.name).join(', ')}`);
    return found[0]!;
  }

  parentOf(span: FinishedSpan): FinishedSpan | undefined {
    const parentId = span.parentSpanContext?.spanId;
    return this.spans.find((candidate) => candidate.spanContext().spanId === parentId);
  }

  /** The names of a span's ancestors, nearest first. */
  ancestry(span: FinishedSpan): string[] {
    const names: string[] = [];
    for (let parent = this.parentOf(span); parent; parent = this.parentOf(parent)) names.push(parent.name);
    return names;
  }

  /** Every attribute and event attribute value of the trace, as text. */
  values(): string[] {
    return this.spans.flatMap((span) => [
      ...Object.values(span.attributes).map(String),
      ...span.events.flatMap((event) => Object.values(event.attributes ?? {}).map(String)),
    ]);
  }
}
