import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { stringify } from 'csv-stringify';
import type { IpRecord } from '../record/model.js';

export const OUTPUT_FORMATS = ['csv', 'ndjson', 'json', 'table'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** A result as the jobs API gives it: a record, or (for a job still running) one with `"status": "pending"`. */
export type ResultRecord = Omit<IpRecord, 'status' | 'updatedAt'> & { status: IpRecord['status'] | 'pending'; updatedAt: string | null };

export interface CsvColumn {
  header: string;
  value: (record: ResultRecord) => string | number | boolean | null | undefined;
}

/** What was written, for the summary and the exit status. */
export class ResultTally {
  records = 0;
  readonly byStatus = new Map<string, number>();
  /** Records with at least one source that ended in `error`. */
  withErrors = 0;
  readonly errorsBySource = new Map<string, number>();

  add(record: ResultRecord): void {
    this.records += 1;
    this.byStatus.set(record.status, (this.byStatus.get(record.status) ?? 0) + 1);
    let failed = false;
    for (const [source, report] of Object.entries(record.sources)) {
      if (report.status !== 'error') continue;
      failed = true;
      this.errorsBySource.set(source, (this.errorsBySource.get(source) ?? 0) + 1);
    }
    if (failed) this.withErrors += 1;
  }

  /** `wrote 500 records to out.csv (480 ok, 12 partial, 8 bogon); 3 with a source in error (cymru 3)` */
  describe(destination: string): string {
    const statuses = [...this.byStatus].map(([status, n]) => `${n.toLocaleString('en-US')} ${status}`).join(', ');
    const records = `${this.records.toLocaleString('en-US')} record${this.records === 1 ? '' : 's'}`;
    let line = `wrote ${records} to ${destination}${statuses ? ` (${statuses})` : ''}`;
    if (this.withErrors > 0) {
      const sources = [...this.errorsBySource].map(([source, n]) => `${source} ${n}`).join(', ');
      line += `; ${this.withErrors.toLocaleString('en-US')} with a source in error (${sources})`;
    }
    return line;
  }
}

/** Writes results, one at a time, in one output format. */
export interface ResultWriter {
  /** `json` is the record's JSON text as the service sent it, written as it is where the format allows. */
  write(record: ResultRecord, json: string): Promise<void>;
  end(): Promise<void>;
}

async function put(out: Writable, text: string): Promise<void> {
  if (!out.write(text)) await once(out, 'drain');
}

class NdjsonWriter implements ResultWriter {
  constructor(private readonly out: Writable) {}
  write(_record: ResultRecord, json: string) {
    return put(this.out, `${json}\n`);
  }
  async end() {}
}

/** One JSON array, written as the results come: `[`, one record per line, `]`. */
class JsonWriter implements ResultWriter {
  #first = true;
  constructor(private readonly out: Writable) {}
  write(_record: ResultRecord, json: string) {
    const lead = this.#first ? '[\n' : ',\n';
    this.#first = false;
    return put(this.out, lead + json);
  }
  end() {
    return put(this.out, this.#first ? '[]\n' : '\n]\n');
  }
}

class CsvWriter implements ResultWriter {
  readonly #csv;
  constructor(
    private readonly out: Writable,
    private readonly columns: readonly CsvColumn[],
  ) {
    // csv-stringify writes false as an empty field, which reads as "unknown"; the flags say true or false.
    this.#csv = stringify({ header: true, columns: columns.map(({ header }) => header), cast: { boolean: (value) => String(value) } });
    this.#csv.pipe(out, { end: false });
  }
  async write(record: ResultRecord) {
    if (!this.#csv.write(this.columns.map(({ value }) => value(record) ?? null))) await once(this.#csv, 'drain');
  }
  async end() {
    // csv-stringify writes the header at the end when no record came, so an empty list still has it.
    const flushed = once(this.#csv, 'end');
    this.#csv.end();
    await flushed;
  }
}

interface TableColumn {
  header: string;
  width: number;
  value: (record: ResultRecord) => string | number | null | undefined;
  right?: boolean;
}

const inError = (record: ResultRecord) =>
  Object.entries(record.sources)
    .filter(([, report]) => report.status === 'error' || report.status === 'rate_limited')
    .map(([source, report]) => `${source} ${report.status === 'error' ? 'error' : 'limited'}`)
    .join(', ');

const TABLE: readonly TableColumn[] = [
  { header: 'ip', width: 39, value: (r) => r.ip ?? r.input },
  { header: 'status', width: 8, value: (r) => r.status },
  { header: 'asn', width: 7, value: (r) => r.asn?.number, right: true },
  { header: 'as name', width: 24, value: (r) => r.asn?.name },
  { header: 'cc', width: 2, value: (r) => r.geo?.country ?? r.asn?.country },
  { header: 'city', width: 14, value: (r) => r.geo?.city },
  { header: 'greynoise', width: 10, value: (r) => r.greynoise?.classification ?? (r.greynoise?.riot ? 'riot' : undefined) },
  { header: 'attacks', width: 7, value: (r) => r.dshield?.attacks, right: true },
  { header: 'problems', width: 24, value: (r) => inError(r) || (r.status === 'bogon' ? r.range : r.error) },
];

function cell(text: string, width: number, right = false): string {
  const fitted = text.length > width ? `${text.slice(0, width - 1)}…` : text;
  return right ? fitted.padStart(width) : fitted.padEnd(width);
}

/** Fixed-width columns, so that rows are printed as they come instead of after the last one. */
class TableWriter implements ResultWriter {
  constructor(private readonly out: Writable) {}
  #row(values: Array<string | number | null | undefined>): string {
    return `${values
      .map((value, index) => {
        const column = TABLE[index] as TableColumn;
        return cell(value === null || value === undefined ? '' : String(value), column.width, column.right);
      })
      .join('  ')
      .trimEnd()}\n`;
  }
  #header = false;
  async write(record: ResultRecord) {
    if (!this.#header) {
      this.#header = true;
      await put(this.out, this.#row(TABLE.map((column) => column.header)));
    }
    await put(this.out, this.#row(TABLE.map((column) => column.value(record))));
  }
  async end() {
    if (!this.#header) await put(this.out, this.#row(TABLE.map((column) => column.header)));
  }
}

export function resultWriter(format: OutputFormat, out: Writable, csvColumns: readonly CsvColumn[]): ResultWriter {
  switch (format) {
    case 'csv':
      return new CsvWriter(out, csvColumns);
    case 'ndjson':
      return new NdjsonWriter(out);
    case 'json':
      return new JsonWriter(out);
    case 'table':
      return new TableWriter(out);
  }
}

/** The format an output file's name asks for (`.csv`, `.ndjson`/`.jsonl`, `.json`), if any. */
export function formatFromName(path: string): OutputFormat | undefined {
  if (/\.csv$/i.test(path)) return 'csv';
  if (/\.(ndjson|jsonl)$/i.test(path)) return 'ndjson';
  if (/\.json$/i.test(path)) return 'json';
  return undefined;
}
