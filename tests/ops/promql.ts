import { parser } from '@prometheus-io/lezer-promql';

type SyntaxNode = ReturnType<typeof parser.parse>['topNode'];

/** One label matcher of a selector: `outcome="error"`, `outcome=~"ok|not_found"`. */
export interface Matcher {
  label: string;
  op: string;
  value: string;
}

/** What one PromQL expression reads: each selector's metric and matchers, and each label it groups or matches on. */
export interface PromqlUse {
  selectors: Array<{ metric: string; matchers: Matcher[] }>;
  /** `by (…)`, `without (…)`, `on (…)`, `ignoring (…)`: labels, and the metrics of the expression they apply to. */
  groupings: Array<{ labels: string[]; metrics: string[] }>;
}

/**
 * Grafana's variables are not PromQL: its interval variables stand for a duration, and the others only
 * appear inside label values (`instance=~"$instance"`), where any text parses.
 */
export function withoutGrafanaVariables(expr: string): string {
  return expr.replace(/\$__(rate_interval|interval|range)\b/g, '5m');
}

/** A PromQL double-quoted string's value (these expressions use no escapes but \" and \\). */
const stringValue = (literal: string) => literal.slice(1, -1).replace(/\\(["\\])/g, '$1');

/**
 * Reads an expression with Prometheus's own PromQL grammar (the Lezer parser its web UI uses), and fails
 * on anything the grammar refuses or a selector without a metric name, which the checks could not follow.
 */
export function promqlUse(expr: string): PromqlUse {
  const tree = parser.parse(expr);
  const text = (node: SyntaxNode) => expr.slice(node.from, node.to);
  const use: PromqlUse = { selectors: [], groupings: [] };
  const metricsUnder = (scope: SyntaxNode) => {
    const metrics: string[] = [];
    const cursor = scope.cursor();
    const end = scope.to;
    do {
      if (cursor.from >= end) break;
      if (cursor.name === 'VectorSelector') {
        const identifier = cursor.node.getChild('Identifier');
        if (identifier) metrics.push(text(identifier));
      }
    } while (cursor.next());
    return metrics;
  };
  tree.iterate({
    enter: (ref) => {
      const node = ref.node;
      if (ref.type.isError) throw new Error(`not PromQL at ${ref.from}: ${expr.slice(Math.max(0, ref.from - 20), ref.from + 20)}`);
      if (ref.name === 'VectorSelector') {
        const identifier = node.getChild('Identifier');
        if (!identifier) throw new Error(`a selector without a metric name: ${text(node)}`);
        const matchers = (node.getChild('LabelMatchers')?.getChildren('UnquotedLabelMatcher') ?? []).map((matcher) => ({
          label: text(matcher.getChild('LabelName')!),
          op: text(matcher.getChild('MatchOp')!),
          value: stringValue(text(matcher.getChild('StringLiteral')!)),
        }));
        use.selectors.push({ metric: text(identifier), matchers });
      }
      if (ref.name === 'GroupingLabels') {
        // by/without belong to their aggregation, on/ignoring to their binary operation: both operands.
        const scope = node.parent?.parent;
        if (!scope) throw new Error(`grouping labels outside an expression: ${text(node)}`);
        use.groupings.push({ labels: node.getChildren('LabelName').map(text), metrics: metricsUnder(scope) });
      }
    },
  });
  return use;
}
