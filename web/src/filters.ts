import { byId, h } from './dom.js';
import { number } from './format.js';
import type { Row } from './rows.js';

/* The table's filters: status, country, AS number, GreyNoise classification, DShield attacks. */

export interface Filter {
  status: string;
  country: string;
  asn: number | null;
  classification: string;
  minAttacks: number | null;
}

/** GreyNoise's classification of an address it has no answer for. */
export const NOT_SEEN = 'not seen';

const ANY = '';

export function readFilter(): Filter {
  const asn = /^\s*(?:AS)?\s*(\d+)\s*$/i.exec(byId('filter-asn', HTMLInputElement).value);
  const attacks = byId('filter-attacks', HTMLInputElement).value.trim();
  return {
    status: byId('filter-status', HTMLSelectElement).value,
    country: byId('filter-country', HTMLSelectElement).value,
    asn: asn ? Number(asn[1]) : null,
    classification: byId('filter-classification', HTMLSelectElement).value,
    minAttacks: attacks === '' || !Number.isFinite(Number(attacks)) ? null : Number(attacks),
  };
}

export function applyFilter(rows: Row[], filter: Filter): Row[] {
  return rows.filter(
    (row) =>
      (filter.status === ANY || row.status === filter.status) &&
      (filter.country === ANY || row.country === filter.country) &&
      (filter.asn === null || row.asn === filter.asn) &&
      (filter.classification === ANY || (row.classification ?? NOT_SEEN) === filter.classification) &&
      (filter.minAttacks === null || (row.attacks ?? 0) >= filter.minAttacks),
  );
}

/** The values present and how many rows have each, most frequent first (ties by value, whatever the table's order). */
export function tally<T extends string | number | null>(rows: Row[], value: (row: Row) => T): Array<[T, number]> {
  const counts = new Map<T, number>();
  for (const row of rows) {
    const key = value(row);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].sort((a, b) => b[1] - a[1] || (a[0] === b[0] ? 0 : a[0] === null || (b[0] !== null && a[0] > b[0]) ? 1 : -1));
}

function fillSelect(id: string, anyLabel: string, options: Array<[string, number]>): void {
  const select = byId(id, HTMLSelectElement);
  const current = select.value;
  select.replaceChildren(
    h('option', { value: ANY }, anyLabel),
    ...options.map(([value, count]) => h('option', { value, selected: value === current }, `${value} (${number(count)})`)),
  );
}

/** The choices of the selects, from the rows of the job. */
export function offerChoices(rows: Row[]): void {
  fillSelect('filter-status', 'any status', tally(rows, (row) => row.status));
  fillSelect('filter-country', 'any country', tally(rows, (row) => row.country).filter((entry): entry is [string, number] => entry[0] !== null));
  fillSelect('filter-classification', 'any', tally(rows, (row) => row.classification ?? NOT_SEEN));
}

/** Sets one filter (a chart's bar was chosen) as if the analyst had. */
export function setFilter(id: 'filter-country' | 'filter-asn' | 'filter-classification' | 'filter-status', value: string): void {
  const control = id === 'filter-asn' ? byId(id, HTMLInputElement) : byId(id, HTMLSelectElement);
  control.value = value;
  control.dispatchEvent(new Event('change', { bubbles: true }));
}
