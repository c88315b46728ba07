import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { respond } from '../doubles/http-upstream.js';
import { startHarness, type Harness } from '../support/app.js';
import { ROOT } from '../support/cli.js';
import { submitJob, waitForJob } from '../support/jobs.js';
import { promqlUse, withoutGrafanaVariables, type PromqlUse } from './promql.js';

/** Labels Prometheus adds to every series it scrapes: they are never in /metrics. */
const TARGET_LABELS = new Set(['instance', 'job']);

interface Panel {
  title?: string;
  panels?: Panel[];
  targets?: Array<{ expr?: string }>;
}
interface Dashboard {
  panels: Panel[];
  templating: { list: Array<{ name: string; query?: string | { query: string } }> };
}
interface Rules {
  groups: Array<{ rules: Array<{ alert: string; expr: string }> }>;
}

/** Every PromQL expression of the dashboard and the rules, named by where it is. */
interface Expression {
  where: string;
  expr: string;
}

async function dashboard(): Promise<Dashboard> {
  return JSON.parse(await readFile(join(ROOT, 'deploy', 'grafana', 'ip-enrich.json'), 'utf8')) as Dashboard;
}

async function rules(): Promise<Rules> {
  return parseYaml(await readFile(join(ROOT, 'deploy', 'prometheus', 'alerts.yml'), 'utf8')) as Rules;
}

function panelsOf(panels: Panel[]): Panel[] {
  return panels.flatMap((panel) => [panel, ...panelsOf(panel.panels ?? [])]);
}

async function expressions(): Promise<Expression[]> {
  const found: Expression[] = [];
  for (const panel of panelsOf((await dashboard()).panels)) {
    for (const target of panel.targets ?? []) if (target.expr) found.push({ where: `panel "${panel.title}"`, expr: target.expr });
  }
  for (const group of (await rules()).groups) {
    for (const rule of group.rules) found.push({ where: `alert ${rule.alert}`, expr: rule.expr });
  }
  return found;
}

/** The series of an exposition: per sample name, each sample's labels. */
function exposition(text: string): Map<string, Array<Record<string, string>>> {
  const samples = new Map<string, Array<Record<string, string>>>();
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? \S+$/.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    for (const [, name, value] of (match[2] ?? '').matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)) labels[name!] = value!;
    const list = samples.get(match[1]!) ?? [];
    list.push(labels);
    samples.set(match[1]!, list);
  }
  return samples;
}

/** What an expression reads that the exposition does not have. */
function drift(use: PromqlUse, samples: Map<string, Array<Record<string, string>>>): string[] {
  const problems: string[] = [];
  for (const { metric, matchers } of use.selectors) {
    const series = samples.get(metric);
    if (!series) {
      problems.push(`${metric} is not in /metrics`);
      continue;
    }
    for (const { label, op, value } of matchers) {
      if (TARGET_LABELS.has(label)) continue;
      const values = series.map((labels) => labels[label]).filter((seen): seen is string => seen !== undefined);
      if (values.length === 0) problems.push(`${metric} has no label ${label}`);
      else if (op === '=' && !values.includes(value)) problems.push(`${metric}{${label}="${value}"} matches no series (values: ${[...new Set(values)].join(', ')})`);
      else if (op === '=~' && !values.some((seen) => new RegExp(`^(?:${value})$`).test(seen))) problems.push(`${metric}{${label}=~"${value}"} matches no series`);
    }
  }
  for (const { labels, metrics } of use.groupings) {
    for (const label of labels) {
      if (TARGET_LABELS.has(label)) continue;
      for (const metric of metrics) {
        if (!samples.get(metric)?.some((series) => label in series)) problems.push(`grouped by ${label}, which ${metric} does not have`);
      }
    }
  }
  return problems;
}

let harness: Harness;
let metrics: string;
beforeAll(async () => {
  harness = await startHarness({ config: { REDIS_URL: process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379' } });
  const { app } = harness;
  // Traffic that feeds every family: requests of each kind, every upstream, a 429, and a job through every phase.
  harness.dshield.respondTo('45.93.6.7', respond.limited(120));
  const enrich = await app.inject({ method: 'POST', url: '/enrich', payload: { ips: ['45.93.6.6', '45.93.6.7', '81.2.69.160', 'nope', '10.0.0.1'] } });
  expect(enrich.statusCode).toBe(200);
  expect((await app.inject({ method: 'GET', url: '/ip/81.2.69.160' })).statusCode).toBe(200);
  expect((await app.inject({ method: 'GET', url: '/ip/not-an-address' })).statusCode).toBe(400);
  const job = await submitJob(app, { ips: ['45.93.6.8', '81.2.69.162'], sources: ['maxmind', 'cymru', 'greynoise'] });
  await waitForJob(app, job.id);
  const answer = await app.inject({ method: 'GET', url: '/metrics' });
  expect(answer.statusCode).toBe(200);
  metrics = answer.body;
});
afterAll(async () => harness.close());

describe('the dashboard and the alert rules against the metrics the service exports', () => {
  it('read only metrics and labels a real /metrics answer has, after traffic through every part', async () => {
    const samples = exposition(metrics);
    const all = await expressions();
    expect(all.length).toBeGreaterThan(25);
    const problems = all.flatMap(({ where, expr }) => drift(promqlUse(withoutGrafanaVariables(expr)), samples).map((problem) => `${where}: ${problem}`));
    // The instance variable's query is Grafana's label_values(metric, label), not PromQL.
    for (const variable of (await dashboard()).templating.list) {
      const query = typeof variable.query === 'object' ? variable.query.query : variable.query;
      const metric = /^label_values\((\w+),\s*(\w+)\)$/.exec(query ?? '')?.[1];
      if (metric && !samples.has(metric)) problems.push(`variable ${variable.name}: ${metric} is not in /metrics`);
    }
    expect(problems).toEqual([]);
  });

  it('catches a metric or label that drifted', () => {
    const samples = exposition(metrics);
    const check = (expr: string) => drift(promqlUse(expr), samples);
    expect(check('sum(rate(ipenrich_cache_lookups_total{tier="l3"}[5m]))')).toEqual([
      'ipenrich_cache_lookups_total{tier="l3"} matches no series (values: l1, l2)',
    ]);
    expect(check('sum by (region) (ipenrich_upstream_blocked_seconds)')).toEqual(['grouped by region, which ipenrich_upstream_blocked_seconds does not have']);
    expect(check('rate(ipenrich_lookups_total[5m])')).toEqual(['ipenrich_lookups_total is not in /metrics']);
    expect(() => promqlUse('sum(rate(ipenrich_addresses_total[5m])')).toThrow(/not PromQL/);
  });

  it('are each described in README', async () => {
    const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
    const start = readme.indexOf('\n## Dashboards and alerts\n');
    expect(start).toBeGreaterThan(0);
    const end = readme.indexOf('\n## ', start + 1);
    const section = readme.slice(start, end === -1 ? undefined : end);
    const titles = panelsOf((await dashboard()).panels)
      .filter((panel) => panel.targets)
      .map((panel) => panel.title!);
    for (const title of titles) expect(section, `panel "${title}"`).toContain(`**${title}**`);
    for (const group of (await rules()).groups) for (const rule of group.rules) expect(section, rule.alert).toContain(`\`${rule.alert}\``);
  });
});
