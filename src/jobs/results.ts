import { Readable } from 'node:stream';
import { stringify } from 'csv-stringify/sync';
import type { Static } from '@sinclair/typebox';
import type { DatabaseHandle } from '../db/client.js';
import { rawText, recordFromText, recordTextColumns } from '../db/record-store.js';
import { routableView, unroutedView, type Outcomes } from '../enrich/record-view.js';
import { parseAddress, type ParsedAddress } from '../ip/address.js';
import type { IpRecord, StoredRecord, StoredSources } from '../record/model.js';
import type { PendingRecordSchema } from '../schemas/jobs.js';

export type JobResult = IpRecord | Static<typeof PendingRecordSchema>;

/**
 * Inputs read per statement when results are streamed, and how many such reads run ahead of the page being
 * written, each on its own connection, so that PostgreSQL's side of the next pages runs on the other core
 * while this process turns one page into text.
 */
const STREAM_PAGE = 2000;
const READ_AHEAD = 2;

const NO_SOURCES: StoredSources = { maxmind: null, cymru: null, greynoise: null, dshield: null };

/** One input with the state of its address and the address's stored record, if it has one. */
interface ResultRow {
  position: number;
  input: string;
  /** The canonical address when the input is routable. */
  ip: string | null;
  /** The sources still due for the address (0: finished); null for an input that is not routable. */
  due: number | null;
  outcomes: Outcomes | null;
  record: StoredRecord | undefined;
}

/**
 * The inputs at positions [$2, $3) in one statement, each with its address's state and its stored record
 * (recordTextColumns), every column as text. Positions are dense, so a page is a range of the key whatever the
 * planner estimates. Prisma's findMany (the inputs, then their addresses) read 1,000,000 inputs in pages of
 * 10,000 in 39 s, a join of the two through $queryRaw in 3.7 s. One json_build_array per row instead of
 * the columns cost PostgreSQL about 6 µs more per row, more than it saved pg.
 */
const PAGE_SQL = `
SELECT i.position, i.input, i.ip, a.due, a.outcomes, ${recordTextColumns('r').join(', ')}
FROM enrichment_job_input i
LEFT JOIN enrichment_job_address a ON a.job_id = i.job_id AND a.ip = i.ip
LEFT JOIN ip_record r ON r.ip = i.ip
WHERE i.job_id = $1::uuid AND i.position >= $2 AND i.position < $3
ORDER BY i.position`;

function resultRow(values: Array<string | null>): ResultRow {
  const due = values[3];
  const outcomes = values[4];
  return {
    position: Number(values[0]),
    input: values[1] as string,
    ip: values[2] as string | null,
    due: due === null || due === undefined ? null : Number(due),
    outcomes: outcomes === null || outcomes === undefined ? null : (JSON.parse(outcomes) as Outcomes),
    record: recordFromText(values, 5),
  };
}

/**
 * The columns of the CSV results, in order. A record's nested parts are flattened to the fields people
 * filter on; everything else is in the JSON forms.
 */
export const CSV_COLUMNS: ReadonlyArray<{ header: string; value: (record: JobResult) => string | number | boolean | null | undefined }> = [
  { header: 'ip', value: (r) => r.ip },
  { header: 'input', value: (r) => r.input },
  { header: 'status', value: (r) => r.status },
  { header: 'error', value: (r) => r.error },
  { header: 'asn', value: (r) => r.asn?.number },
  { header: 'as_name', value: (r) => r.asn?.name },
  { header: 'prefix', value: (r) => r.asn?.prefix },
  { header: 'country', value: (r) => r.geo?.country ?? r.asn?.country },
  { header: 'city', value: (r) => r.geo?.city },
  { header: 'latitude', value: (r) => r.geo?.latitude },
  { header: 'longitude', value: (r) => r.geo?.longitude },
  { header: 'greynoise_classification', value: (r) => r.greynoise?.classification },
  { header: 'greynoise_noise', value: (r) => r.greynoise?.noise },
  { header: 'greynoise_riot', value: (r) => r.greynoise?.riot },
  { header: 'dshield_attacks', value: (r) => r.dshield?.attacks },
  { header: 'dshield_reports', value: (r) => r.dshield?.reports },
  { header: 'dshield_threat_feeds', value: (r) => r.dshield?.threatFeeds.join(' ') },
  { header: 'maxmind_status', value: (r) => r.sources.maxmind.status },
  { header: 'cymru_status', value: (r) => r.sources.cymru.status },
  { header: 'greynoise_status', value: (r) => r.sources.greynoise.status },
  { header: 'dshield_status', value: (r) => r.sources.dshield.status },
  { header: 'updated_at', value: (r) => r.updatedAt },
];

/** A finished address with nothing stored (every source it was asked for could not answer): the record is empty. */
function unstored(ip: string): StoredRecord {
  return { ip, sources: NO_SOURCES, updatedAt: '' };
}

function pending(input: string, ip: string, record: StoredRecord | undefined): JobResult {
  const view = routableView(input, record ?? unstored(ip), {});
  return { ...view, status: 'pending', updatedAt: record ? view.updatedAt : null };
}

/** The result of one input, as a record object. */
function resultView(row: ResultRow): JobResult {
  const { ip, record } = row;
  if (ip === null) return unroutedView(row.input, parseAddress(row.input) as Exclude<ParsedAddress, { kind: 'routable' }>);
  if (row.due !== 0) return pending(row.input, ip, record);
  const view = routableView(row.input, record ?? unstored(ip), row.outcomes ?? {});
  return record ? view : { ...view, updatedAt: null };
}

/**
 * The result of one input as JSON text: the same text as POST /enrich gives for the record. Every record read
 * here is a new object, so routableJson's cache per record object would only add garbage.
 */
const resultJson = (row: ResultRow): string => JSON.stringify(resultView(row));

const csvValues = (row: ResultRow) => {
  const view = resultView(row);
  return CSV_COLUMNS.map(({ value }) => value(view) ?? null);
};

/** csv-stringify writes false as an empty field, which reads as "unknown"; the flags say true or false. */
const csvOptions = (header: boolean) => ({
  header,
  columns: CSV_COLUMNS.map(({ header: name }) => name),
  cast: { boolean: (value: boolean) => String(value) },
});

/** A job's results in input order, read from the database a page at a time, each with its stored record. */
export class JobResults {
  constructor(private readonly database: Pick<DatabaseHandle, 'pool'>) {}

  /** `limit` results from position `from` on, as JSON texts, and the position after them (null at the end). */
  async page(jobId: string, from: number, limit: number): Promise<{ results: string[]; next: number | null }> {
    const rows = await this.#read(jobId, from, limit + 1);
    const more = rows.length > limit;
    const page = more ? rows.slice(0, limit) : rows;
    return { results: page.map(resultJson), next: more ? (page.at(-1) as ResultRow).position + 1 : null };
  }

  /** Every result from `from` on, one JSON text per line; a page is one string written to the response. */
  ndjson(jobId: string, from: number): Readable {
    const pages = this.#pages(jobId, from);
    // highWaterMark 1: one page waits at most (a Readable of objects buffers 16 by default, here 16 pages).
    return Readable.from(
      (async function* () {
        for await (const page of pages) {
          let text = '';
          for (const row of page) text += `${resultJson(row)}\n`;
          yield text;
        }
      })(),
      { highWaterMark: 1 },
    );
  }

  /** Every result from `from` on as a CSV row of CSV_COLUMNS, after a header line; a page is one string. */
  csv(jobId: string, from: number): Readable {
    const pages = this.#pages(jobId, from);
    return Readable.from(
      (async function* () {
        let first = true;
        for await (const page of pages) {
          yield stringify(page.map(csvValues), csvOptions(first));
          first = false;
        }
        if (first) yield stringify([], csvOptions(true));
      })(),
      { highWaterMark: 1 },
    );
  }

  /** Pages one after another, READ_AHEAD of them read while the current one is written out. */
  async *#pages(jobId: string, from: number): AsyncGenerator<ResultRow[]> {
    const reads: Array<Promise<ResultRow[]>> = [];
    let next = from;
    const readAhead = () => {
      const read = this.#read(jobId, next, STREAM_PAGE);
      // A read ahead that fails is seen when it is awaited, not as an unhandled rejection meanwhile.
      read.catch(() => undefined);
      reads.push(read);
      next += STREAM_PAGE;
    };
    for (let n = 0; n < READ_AHEAD; n += 1) readAhead();
    for (let read = reads.shift(); read; read = reads.shift()) {
      const page = await read;
      // Positions are dense: a short page is the last one, and the reads after it find nothing.
      if (page.length < STREAM_PAGE) {
        if (page.length > 0) yield page;
        return;
      }
      readAhead();
      yield page;
    }
  }

  async #read(jobId: string, from: number, limit: number): Promise<ResultRow[]> {
    const { rows } = await this.database.pool.query<Array<string | null>>({
      text: PAGE_SQL,
      values: [jobId, from, from + limit],
      rowMode: 'array',
      types: rawText,
    });
    return rows.map(resultRow);
  }
}
