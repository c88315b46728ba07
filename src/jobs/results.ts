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

/** An address the job has finished, with the outcomes its last chunk kept (see settleChunk). */
export interface FinishedAddress {
  ip: string;
  outcomes: Outcomes | null;
}

/**
 * One input as PAGE_SQL reads it: position, input, canonical address (null when the input is not routable) and
 * its result line (for a routable address, once the job has finished it); without a line, the sources still
 * due (0: finished), the job's outcomes and the stored record (recordTextColumns).
 */
type PageRow = Array<string | null>;
const POSITION = 0;
const INPUT = 1;
const IP = 2;
const LINE = 3;
const DUE = 4;
const OUTCOMES = 5;
const RECORD = 6;

/**
 * The inputs at positions [$2, $3) in one statement, every column as text. Positions are dense, so a page is
 * a range of the key whatever the planner estimates. An address the job has finished has its result line at
 * its first position (linesOf), so a finished job's page is one range of one index, read in order; only the
 * other inputs look their address up (the LATERALs run for a row only when their gate holds, OFFSET 0
 * keeping PostgreSQL from flattening them into joins that always run): a repeated address for the line at
 * its first position, a pending one for its stored record. Measured on a finished job of 100,000 results
 * (CPU per result, PostgreSQL + this process, 2 cores, others at work): joining every input to its address and
 * its record and building the record here took 20 + 10 us; the line kept with the address, 5 + 3 us; kept
 * with the input, 1 + 2.5 us.
 */
const PAGE_SQL = `
SELECT i.position, i.input, i.ip, COALESCE(i.result, d.line), d.due, d.outcomes, r.*
FROM enrichment_job_input i
LEFT JOIN LATERAL (
  SELECT a.due, f.result AS line, CASE WHEN f.result IS NULL THEN a.outcomes END AS outcomes
  FROM enrichment_job_address a
  LEFT JOIN enrichment_job_input f ON f.job_id = a.job_id AND f.position = a.seq AND a.due = 0
  WHERE a.job_id = i.job_id AND a.ip = i.ip AND i.result IS NULL
  OFFSET 0
) d ON true
LEFT JOIN LATERAL (
  SELECT ${recordTextColumns('s').join(', ')} FROM ip_record s WHERE s.ip = i.ip AND i.result IS NULL AND d.line IS NULL
  OFFSET 0
) r ON true
WHERE i.job_id = $1::uuid AND i.position >= $2 AND i.position < $3
ORDER BY i.position`;

/**
 * The inputs at positions [$2, $3) as one text of NDJSON, made by PostgreSQL from the result lines, with the
 * number of inputs read and of those that have no line yet: a page with any is read again with PAGE_SQL. Each
 * line is the record's JSON text as lineOf makes it: PostgreSQL escapes a string for JSON (to_json) exactly
 * as JSON.stringify does for any text it can hold. Measured in the bench's stream of 100,000 results (CPU
 * per result, this process + PostgreSQL, warm runs on a busy machine): 3.6-4.2 + 1.9-2.0 us read row by row and
 * made into lines here, 2.2-2.4 + 3.0-3.2 us made by PostgreSQL, whose two reads ahead run on the other core
 * while this process, the one that cannot spread, does less than half of what it did.
 */
const NDJSON_SQL = `
SELECT string_agg(
         CASE WHEN i.ip IS NULL THEN i.result
              ELSE '{"ip":"' || i.ip || '","input":' || to_json(i.input)::text || ',' || COALESCE(i.result, d.line) END || E'\n',
         '' ORDER BY i.position),
       count(*), count(*) FILTER (WHERE i.result IS NULL AND d.line IS NULL)
FROM enrichment_job_input i
LEFT JOIN LATERAL (
  SELECT f.result AS line
  FROM enrichment_job_address a
  JOIN enrichment_job_input f ON f.job_id = a.job_id AND f.position = a.seq
  WHERE a.job_id = i.job_id AND a.ip = i.ip AND a.due = 0 AND i.result IS NULL
  OFFSET 0
) d ON true
WHERE i.job_id = $1::uuid AND i.position >= $2 AND i.position < $3`;

/**
 * NDJSON_SQL for a page where every input has its own line (each address appears once in the list, the
 * usual case): without the lateral join per row that looks up a repeated address's line.
 */
const OWN_LINES_SQL = `
SELECT string_agg(
         CASE WHEN i.ip IS NULL THEN i.result
              ELSE '{"ip":"' || i.ip || '","input":' || to_json(i.input)::text || ',' || i.result END || E'\n',
         '' ORDER BY i.position),
       count(*), count(*) FILTER (WHERE i.result IS NULL)
FROM enrichment_job_input i
WHERE i.job_id = $1::uuid AND i.position >= $2 AND i.position < $3`;

/** Finished addresses of a job with the outcomes earlier chunks kept and their stored records. */
const FINISHED_SQL = `
SELECT a.ip, a.outcomes, ${recordTextColumns('r').join(', ')}
FROM enrichment_job_address a
LEFT JOIN ip_record r ON r.ip = a.ip
WHERE a.job_id = $1::uuid AND a.ip = ANY($2::text[])`;

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

/** The answer for a finished address, from its stored record (if any) and every outcome the job kept. */
function finishedView(input: string, ip: string, record: StoredRecord | undefined, outcomes: Outcomes): IpRecord {
  const view = routableView(input, record ?? unstored(ip), outcomes);
  return record ? view : { ...view, updatedAt: null };
}

/**
 * A finished address's result line: its record as JSON, after the ip and the input, which differ between the
 * inputs that name the address (" 8.8.8.8", "8.8.8.8") and are put in front when a line is read (lineOf).
 */
function resultLine(view: IpRecord): string {
  const { ip: _ip, input: _input, ...rest } = view;
  return JSON.stringify(rest).slice(1);
}

/** The whole result line of an input that is not looked up, kept from the job's submission on (storeInputs). */
export function unroutedLine(input: string, parsed: Exclude<ParsedAddress, { kind: 'routable' }>): string {
  return JSON.stringify(unroutedView(input, parsed));
}

/**
 * The result of an input that has no result line: an address not finished yet, or one finished, or an input
 * stored, before lines were kept.
 */
function resultView(values: PageRow): JobResult {
  const input = values[INPUT] as string;
  const ip = values[IP];
  if (ip === null || ip === undefined) {
    return unroutedView(input, parseAddress(input) as Exclude<ParsedAddress, { kind: 'routable' }>);
  }
  const record = recordFromText(values, RECORD);
  const outcomes = values[OUTCOMES];
  if (values[DUE] !== '0') {
    const view = routableView(input, record ?? unstored(ip), {});
    return { ...view, status: 'pending', updatedAt: record ? view.updatedAt : null };
  }
  return finishedView(input, ip, record, outcomes === null || outcomes === undefined ? {} : (JSON.parse(outcomes) as Outcomes));
}

/**
 * The result of one input as JSON text: the same text as POST /enrich gives for the record (as PostgreSQL
 * stores it). A canonical address is digits, hex, dots and colons, so it needs no escaping; the input may
 * need any.
 */
function lineOf(values: PageRow): string {
  const line = values[LINE];
  if (line === null || line === undefined) return JSON.stringify(resultView(values));
  const ip = values[IP];
  if (ip === null) return line;
  return `{"ip":"${ip as string}","input":${JSON.stringify(values[INPUT])},${line}`;
}

const csvValues = (values: PageRow) => {
  const view = values[LINE] === null ? resultView(values) : (JSON.parse(lineOf(values)) as JobResult);
  return CSV_COLUMNS.map(({ value }) => value(view) ?? null);
};

/** csv-stringify writes false as an empty field, which reads as "unknown"; the flags say true or false. */
const csvOptions = (header: boolean) => ({
  header,
  columns: CSV_COLUMNS.map(({ header: name }) => name),
  cast: { boolean: (value: boolean) => String(value) },
});

/**
 * A job's results in input order, read from the database a page at a time; and the result lines of the
 * addresses a chunk finishes, which the worker stores with them.
 */
export class JobResults {
  constructor(private readonly database: Pick<DatabaseHandle, 'pool'>) {}

  /**
   * The result lines of addresses the job has just finished, in their order: each record as stored now, with
   * every outcome the job kept for it, the earlier chunks' (stored) and the last one's (`outcomes`).
   */
  async linesOf(jobId: string, finished: readonly FinishedAddress[]): Promise<string[]> {
    if (finished.length === 0) return [];
    const { rows } = await this.database.pool.query<PageRow>({
      text: FINISHED_SQL,
      values: [jobId, finished.map(({ ip }) => ip)],
      rowMode: 'array',
      types: rawText,
    });
    const stored = new Map(rows.map((values) => [values[0] as string, values]));
    return finished.map(({ ip, outcomes }) => {
      const values = stored.get(ip);
      const earlier = values?.[1];
      const kept = { ...(earlier ? (JSON.parse(earlier) as Outcomes) : {}), ...outcomes };
      return resultLine(finishedView(ip, ip, values && recordFromText(values, 2), kept));
    });
  }

  /** `limit` results from position `from` on, as JSON texts, and the position after them (null at the end). */
  async page(jobId: string, from: number, limit: number): Promise<{ results: string[]; next: number | null }> {
    const rows = await this.#read(jobId, from, limit + 1);
    const more = rows.length > limit;
    const page = more ? rows.slice(0, limit) : rows;
    return { results: page.map(lineOf), next: more ? Number((page.at(-1) as PageRow)[POSITION]) + 1 : null };
  }

  /** Every result from `from` on, one JSON text per line; a page is one string written to the response. */
  ndjson(jobId: string, from: number): Readable {
    const pages = this.#readAhead(from, (at) => this.#ndjsonPage(jobId, at));
    // highWaterMark 1: one page waits at most (a Readable of objects buffers 16 by default, here 16 pages).
    return Readable.from(
      (async function* () {
        for await (const { text } of pages) if (text.length > 0) yield text;
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

  /** The rows of pages one after another. */
  async *#pages(jobId: string, from: number): AsyncGenerator<PageRow[]> {
    for await (const { rows } of this.#readAhead(from, async (at) => {
      const rows = await this.#read(jobId, at, STREAM_PAGE);
      return { rows, length: rows.length };
    })) {
      if (rows.length > 0) yield rows;
    }
  }

  /** One page of NDJSON: made by PostgreSQL when every input has its line, else here, row by row. */
  async #ndjsonPage(jobId: string, from: number): Promise<{ text: string; length: number }> {
    for (const sql of [OWN_LINES_SQL, NDJSON_SQL]) {
      const { rows } = await this.database.pool.query<[string | null, string, string]>({
        text: sql,
        values: [jobId, from, from + STREAM_PAGE],
        rowMode: 'array',
        types: rawText,
      });
      const [text, length, missing] = rows[0] ?? [null, '0', '0'];
      if (missing === '0') return { text: text ?? '', length: Number(length) };
    }
    let lines = '';
    const page = await this.#read(jobId, from, STREAM_PAGE);
    for (const values of page) lines += `${lineOf(values)}\n`;
    return { text: lines, length: page.length };
  }

  /** Pages one after another, READ_AHEAD of them read while the current one is written out. */
  async *#readAhead<T extends { length: number }>(from: number, read: (at: number) => Promise<T>): AsyncGenerator<T> {
    const reads: Array<Promise<T>> = [];
    let next = from;
    const readNext = () => {
      const reading = read(next);
      // A read ahead that fails is seen when it is awaited, not as an unhandled rejection meanwhile.
      reading.catch(() => undefined);
      reads.push(reading);
      next += STREAM_PAGE;
    };
    for (let n = 0; n < READ_AHEAD; n += 1) readNext();
    for (let reading = reads.shift(); reading; reading = reads.shift()) {
      const page = await reading;
      // Positions are dense: a short page is the last one, and the reads after it find nothing.
      if (page.length < STREAM_PAGE) {
        yield page;
        return;
      }
      readNext();
      yield page;
    }
  }

  async #read(jobId: string, from: number, limit: number): Promise<PageRow[]> {
    const { rows } = await this.database.pool.query<PageRow>({
      text: PAGE_SQL,
      values: [jobId, from, from + limit],
      rowMode: 'array',
      types: rawText,
    });
    return rows;
  }
}
