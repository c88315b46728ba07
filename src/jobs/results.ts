import { Readable } from 'node:stream';
import { stringify } from 'csv-stringify';
import type { Static } from '@sinclair/typebox';
import type { DatabaseHandle } from '../db/client.js';
import type { RecordSource } from '../cache/tiered-loader.js';
import { routableJson, routableView, unroutedView } from '../enrich/record-view.js';
import { parseAddress, type ParsedAddress } from '../ip/address.js';
import type { IpRecord, StoredRecord, StoredSources } from '../record/model.js';
import type { PendingRecordSchema } from '../schemas/jobs.js';
import { readInputs, type InputRow } from './inputs.js';

export type JobResult = IpRecord | Static<typeof PendingRecordSchema>;

/**
 * Inputs read per statement when results are streamed. Streaming 300,000 results as NDJSON took the API
 * process to a peak RSS of 378 MB with pages of 5,000 and 302 MB with pages of 1,000, at 36,000 and 34,500
 * records/s: a page's garbage outlives fewer young collections, and less of it reaches the old generation.
 */
const STREAM_PAGE = 1000;

const NO_SOURCES: StoredSources = { maxmind: null, cymru: null, greynoise: null, dshield: null };

/** One input and the stored record of its address, if the address has one. */
interface ResultRow {
  row: InputRow;
  record: StoredRecord | undefined;
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
function resultView({ row, record }: ResultRow): JobResult {
  if (row.ip === null) return unroutedView(row.input, parseAddress(row.input) as Exclude<ParsedAddress, { kind: 'routable' }>);
  if (row.due !== 0) return pending(row.input, row.ip, record);
  const view = routableView(row.input, record ?? unstored(row.ip), row.outcomes ?? {});
  return record ? view : { ...view, updatedAt: null };
}

/** The result of one input as JSON text; an address answered from its stored record reuses the serialized answer. */
function resultJson(result: ResultRow): string {
  const { row, record } = result;
  if (row.ip !== null && row.due === 0 && record) return routableJson(row.input, record, row.outcomes ?? {});
  return JSON.stringify(resultView(result));
}

/** A job's results in input order, read from the database a page at a time, each with its stored record. */
export class JobResults {
  constructor(
    private readonly database: Pick<DatabaseHandle, 'prisma'>,
    private readonly records: RecordSource,
  ) {}

  /** `limit` results from position `from` on, as JSON texts, and the position after them (null at the end). */
  async page(jobId: string, from: number, limit: number): Promise<{ results: string[]; next: number | null }> {
    const rows = await this.#read(jobId, from, limit + 1);
    const more = rows.length > limit;
    const page = more ? rows.slice(0, limit) : rows;
    return { results: page.map(resultJson), next: more ? (page.at(-1) as ResultRow).row.position + 1 : null };
  }

  /** Every result from `from` on, one JSON text per line. */
  ndjson(jobId: string, from: number): Readable {
    const pages = this.#pages(jobId, from);
    // One page waits at most: a Readable of objects buffers 16 by default, here 16 pages of records.
    return Readable.from(
      (async function* () {
        for await (const page of pages) yield `${page.map(resultJson).join('\n')}\n`;
      })(),
      { highWaterMark: 1 },
    );
  }

  /** Every result from `from` on as a CSV row of CSV_COLUMNS, after a header line. */
  csv(jobId: string, from: number): Readable {
    const pages = this.#pages(jobId, from);
    const rows = Readable.from(
      (async function* () {
        for await (const page of pages) for (const result of page) yield CSV_COLUMNS.map(({ value }) => value(resultView(result)) ?? null);
      })(),
    );
    // csv-stringify writes false as an empty field, which reads as "unknown"; the flags say true or false.
    const csv = stringify({
      header: true,
      columns: CSV_COLUMNS.map(({ header }) => header),
      cast: { boolean: (value) => String(value) },
    });
    rows.once('error', (error) => csv.destroy(error));
    return rows.pipe(csv);
  }

  /** Pages one after another; the next is read while the current one is written out. */
  async *#pages(jobId: string, from: number): AsyncGenerator<ResultRow[]> {
    let next: Promise<ResultRow[]> | undefined = this.#read(jobId, from, STREAM_PAGE);
    while (next) {
      const page: ResultRow[] = await next;
      next = page.length === STREAM_PAGE ? this.#read(jobId, (page.at(-1) as ResultRow).row.position + 1, STREAM_PAGE) : undefined;
      // A read ahead that fails is seen when it is awaited, not as an unhandled rejection meanwhile.
      next?.catch(() => undefined);
      if (page.length > 0) yield page;
    }
  }

  async #read(jobId: string, from: number, limit: number): Promise<ResultRow[]> {
    const rows = await readInputs(this.database, jobId, from, limit);
    const records = await this.records.load([...new Set(rows.flatMap((row) => (row.ip === null ? [] : [row.ip])))]);
    return rows.map((row) => ({ row, record: row.ip === null ? undefined : records.get(row.ip) }));
  }
}
