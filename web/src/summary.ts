import { byId, h } from './dom.js';
import { number } from './format.js';
import { NOT_SEEN, setFilter, tally } from './filters.js';
import type { Row } from './rows.js';

/*
 * A summary of the rows the table shows, as bar charts: the top AS numbers and countries, GreyNoise's verdicts
 * and how many addresses are known scanners. Choosing a bar filters the table by it.
 */

const TOP = 8;

interface Bar {
  label: string;
  count: number;
  /** Filters the table by this bar, when it names a value to filter by. */
  filter?: () => void;
}

function chart(title: string, bars: Bar[], of: number): HTMLElement {
  const most = Math.max(1, ...bars.map((bar) => bar.count));
  const items = bars.map((bar) => {
    const fill = h('span', { class: 'fill' });
    fill.style.width = `${(bar.count / most) * 100}%`;
    const content = [h('span', { class: 'label' }, bar.label), h('span', { class: 'track' }, fill), h('span', { class: 'count' }, number(bar.count))];
    if (!bar.filter) return h('li', {}, h('span', { class: 'bar-row' }, ...content));
    const button = h('button', { type: 'button', class: 'bar-row', title: `show only ${bar.label}` }, ...content);
    button.addEventListener('click', bar.filter);
    return h('li', {}, button);
  });
  return h(
    'figure',
    { class: 'chart' },
    h('figcaption', {}, title, h('span', { class: 'hint' }, ` of ${number(of)}`)),
    items.length > 0 ? h('ol', {}, ...items) : h('p', { class: 'hint' }, 'none'),
  );
}

export function renderSummary(rows: Row[]): void {
  const names = new Map<number, string | null>();
  for (const row of rows) if (row.asn !== null && !names.has(row.asn)) names.set(row.asn, row.asName);
  const asns = tally(rows, (row) => row.asn)
    .filter((entry): entry is [number, number] => entry[0] !== null)
    .slice(0, TOP)
    .map(([asn, count]) => ({ label: `AS${asn} ${names.get(asn) ?? ''}`.trim(), count, filter: () => setFilter('filter-asn', String(asn)) }));
  const countries = tally(rows, (row) => row.country)
    .filter((entry): entry is [string, number] => entry[0] !== null)
    .slice(0, TOP)
    .map(([country, count]) => ({ label: country, count, filter: () => setFilter('filter-country', country) }));
  const scanners = rows.filter((row) => row.noise === true).length;
  const riot = rows.filter((row) => row.riot === true).length;
  const verdicts = tally(rows, (row) => row.classification ?? NOT_SEEN).map(([classification, count]) => ({
    label: classification,
    count,
    filter: () => setFilter('filter-classification', classification),
  }));
  const statuses = tally(rows, (row) => row.status).map(([status, count]) => ({ label: status, count, filter: () => setFilter('filter-status', status) }));
  byId('summary', HTMLDivElement).replaceChildren(
    h('p', { class: 'scanners' }, h('strong', {}, number(scanners)), ` known scanners (GreyNoise saw them scanning the Internet), ${number(riot)} common business services`),
    chart('Top AS numbers', asns, rows.length),
    chart('Top countries', countries, rows.length),
    chart('GreyNoise classification', verdicts, rows.length),
    chart('Status', statuses, rows.length),
  );
}
