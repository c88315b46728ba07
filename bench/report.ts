export interface Row {
  scenario: string;
  measured: string;
  bound: string;
  value: string;
  target: string;
  /** undefined: informational only; null: the scenario could not be measured. */
  pass: boolean | undefined | null;
}

const HEADERS = ['scenario', 'measured', 'ideal/bound', 'ratio or value', 'target', 'pass/FAIL'];

export function verdict(pass: Row['pass']): string {
  if (pass === null) return 'ERROR';
  if (pass === undefined) return '-';
  return pass ? 'pass' : 'FAIL';
}

/** A plain-text table with aligned columns, readable in a terminal and in a pasted report. */
export function formatTable(rows: readonly Row[]): string {
  const cells = rows.map((row) => [row.scenario, row.measured, row.bound, row.value, row.target, verdict(row.pass)]);
  const widths = HEADERS.map((header, column) => Math.max(header.length, ...cells.map((line) => line[column]!.length)));
  const line = (values: readonly string[]) => `| ${values.map((value, column) => value.padEnd(widths[column]!)).join(' | ')} |`;
  const rule = `|${widths.map((width) => '-'.repeat(width + 2)).join('|')}|`;
  return [line(HEADERS), rule, ...cells.map(line)].join('\n');
}

export const ms = (value: number): string => `${value.toFixed(value < 10 ? 2 : 0)} ms`;
export const mb = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
export const perSecond = (value: number, unit?: string): string =>
  `${Math.round(value).toLocaleString('en-US')}${unit ? ` ${unit}` : ''}/s`;

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}
