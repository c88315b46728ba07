import { h } from './dom.js';
import { number } from './format.js';
import type { Row } from './rows.js';

/*
 * The results table, virtualised: however many rows there are, the document holds only those in view (plus a
 * few either side) between two spacer rows of the height of the rest, so 100,000 rows scroll as 50 do. Every
 * row has the same height (style.css), which is what lets a scroll position name its rows.
 */

export const ROW_HEIGHT = 30;
const OVERSCAN = 10;

type Key = 'index' | 'ip' | 'status' | 'asn' | 'asName' | 'country' | 'city' | 'classification' | 'attacks' | 'reports' | 'note';

interface Column {
  key: Key;
  label: string;
  text: (row: Row) => string;
  /** Sorting by it; the input order settles ties. */
  value: (row: Row) => string | number | null;
  numeric?: boolean;
}

const dash = (value: string | number | null) => (value === null || value === '' ? '—' : typeof value === 'number' ? number(value) : value);

const COLUMNS: Column[] = [
  { key: 'index', label: '#', text: (row) => String(row.index + 1), value: (row) => row.index, numeric: true },
  { key: 'ip', label: 'address', text: (row) => row.ip, value: (row) => row.ipKey },
  { key: 'status', label: 'status', text: (row) => row.status, value: (row) => row.status },
  { key: 'asn', label: 'AS', text: (row) => (row.asn === null ? '—' : `AS${row.asn}`), value: (row) => row.asn, numeric: true },
  { key: 'asName', label: 'AS name', text: (row) => dash(row.asName), value: (row) => row.asName },
  { key: 'country', label: 'country', text: (row) => dash(row.country), value: (row) => row.country },
  { key: 'city', label: 'city', text: (row) => dash(row.city), value: (row) => row.city },
  {
    key: 'classification',
    label: 'GreyNoise',
    text: (row) => (row.classification ?? (row.noise === null ? '—' : 'not seen')) + (row.noise ? ' · scanner' : '') + (row.riot ? ' · RIOT' : ''),
    value: (row) => row.classification,
  },
  { key: 'attacks', label: 'DShield attacks', text: (row) => dash(row.attacks), value: (row) => row.attacks, numeric: true },
  { key: 'reports', label: 'DShield reports', text: (row) => dash(row.reports), value: (row) => row.reports, numeric: true },
  { key: 'note', label: 'why', text: (row) => row.note, value: (row) => row.note },
];

export interface Sort {
  key: Key;
  descending: boolean;
}

/** Rows in this order: by the column's value (nothing last, either way), ties in input order. */
export function sortRows(rows: Row[], sort: Sort): Row[] {
  const column = COLUMNS.find((candidate) => candidate.key === sort.key) ?? COLUMNS[0]!;
  const sign = sort.descending ? -1 : 1;
  const keyed = rows.map((row) => ({ row, value: column.value(row) }));
  keyed.sort((a, b) => {
    if (a.value === b.value) return a.row.index - b.row.index;
    if (a.value === null) return 1;
    if (b.value === null) return -1;
    const order = a.value < b.value ? -1 : 1;
    return order * sign || a.row.index - b.row.index;
  });
  return keyed.map((entry) => entry.row);
}

export class VirtualTable {
  readonly #scroller: HTMLElement;
  readonly #table: HTMLTableElement;
  readonly #body: HTMLTableSectionElement;
  readonly #before: HTMLTableCellElement;
  readonly #after: HTMLTableCellElement;
  readonly #headers = new Map<Key, HTMLTableCellElement>();
  #rows: Row[] = [];
  #sort: Sort = { key: 'index', descending: false };
  #drawn = '';
  #frame = 0;

  constructor(
    scroller: HTMLElement,
    /** Told when the analyst picks an address to look at whole. */
    private readonly open: (ip: string) => void,
    private readonly sorted: (sort: Sort) => void,
  ) {
    this.#scroller = scroller;
    const head = h(
      'tr',
      { 'aria-rowindex': 1 },
      ...COLUMNS.map((column) => {
        const button = h('button', { type: 'button', class: 'sort', 'data-sort': column.key }, column.label);
        button.addEventListener('click', () => this.#toggle(column.key));
        const cell = h('th', { scope: 'col', class: column.numeric ? 'num' : undefined, 'data-key': column.key }, button);
        this.#headers.set(column.key, cell);
        return cell;
      }),
    );
    this.#before = h('td', { colspan: COLUMNS.length });
    this.#after = h('td', { colspan: COLUMNS.length });
    this.#body = h('tbody');
    this.#table = h('table', { class: 'results' }, h('thead', {}, head), this.#body);
    scroller.replaceChildren(this.#table);
    scroller.addEventListener('scroll', () => this.#schedule(), { passive: true });
    new ResizeObserver(() => this.#schedule()).observe(scroller);
    this.#showSort();
  }

  get sort(): Sort {
    return this.#sort;
  }

  /** The rows to show, already filtered and sorted. */
  show(rows: Row[]): void {
    this.#rows = rows;
    this.#table.setAttribute('aria-rowcount', String(rows.length + 1));
    this.#drawn = '';
    this.#scroller.scrollTop = 0;
    this.#draw();
  }

  #toggle(key: Key): void {
    this.#sort = { key, descending: this.#sort.key === key ? !this.#sort.descending : false };
    this.#showSort();
    this.sorted(this.#sort);
  }

  #showSort(): void {
    for (const [key, cell] of this.#headers) {
      if (key === this.#sort.key) cell.setAttribute('aria-sort', this.#sort.descending ? 'descending' : 'ascending');
      else cell.removeAttribute('aria-sort');
    }
  }

  #schedule(): void {
    if (this.#frame !== 0) return;
    this.#frame = requestAnimationFrame(() => {
      this.#frame = 0;
      this.#draw();
    });
  }

  #draw(): void {
    const total = this.#rows.length;
    const first = Math.max(0, Math.floor(this.#scroller.scrollTop / ROW_HEIGHT) - OVERSCAN);
    const count = Math.ceil(this.#scroller.clientHeight / ROW_HEIGHT) + 2 * OVERSCAN;
    const last = Math.min(total, first + count);
    const key = `${first}:${last}`;
    if (key === this.#drawn) return;
    this.#drawn = key;
    this.#before.style.height = `${first * ROW_HEIGHT}px`;
    this.#after.style.height = `${(total - last) * ROW_HEIGHT}px`;
    const rows: HTMLTableRowElement[] = [];
    for (let position = first; position < last; position += 1) rows.push(this.#row(this.#rows[position]!, position));
    const spacer = (cell: HTMLTableCellElement) => h('tr', { class: 'spacer', 'aria-hidden': 'true' }, cell);
    this.#body.replaceChildren(spacer(this.#before), ...rows, spacer(this.#after));
  }

  #row(row: Row, position: number): HTMLTableRowElement {
    return h(
      'tr',
      { 'aria-rowindex': position + 2, class: `status-${row.status}` },
      ...COLUMNS.map((column) => {
        const text = column.text(row);
        if (column.key === 'ip') {
          const button = h('button', { type: 'button', class: 'link', title: `look up ${row.ip}` }, text);
          button.addEventListener('click', () => this.open(row.ip));
          return h('td', {}, button);
        }
        return h('td', { class: column.numeric ? 'num' : undefined, title: text }, text);
      }),
    );
  }
}
