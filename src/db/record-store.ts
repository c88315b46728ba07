import pLimit, { type LimitFunction } from 'p-limit';
import { chunks } from '../chunks.js';
import type { DatabaseHandle } from './client.js';
import { DatabaseUnavailableError } from './errors.js';
import {
  SOURCE_NAMES,
  type SourceName,
  type StoredRecord,
  type StoredSourceState,
  type StoredSources,
} from '../record/model.js';

/** What one request learned about one address: only the sources it fetched afresh. */
export interface RecordUpdate {
  ip: string;
  sources: Partial<StoredSources>;
  /** Lookups to add to the address's count (0 when an earlier write of the same request counted it). */
  lookups: number;
}

type Row = Record<string, unknown> & { ip: string; updated_at: Date | string };

const SOURCE_COLUMNS = SOURCE_NAMES.flatMap((source) => [
  [source, 'jsonb'],
  [`${source}_status`, 'text'],
  [`${source}_fetched_at`, 'timestamptz'],
]);
/** The upsert's columns, in the order of each row's values (updateToRow). */
const COLUMNS: Array<[string, string]> = [
  ['ip', 'text'],
  ...(SOURCE_COLUMNS as Array<[string, string]>),
  ['maxmind_database', 'text'],
  ['lookups', 'int'],
];
const STORED = COLUMNS.filter(([name]) => name !== 'lookups');

/**
 * A column's value from the row's array `x`. A JSON null is stored as NULL: `->` alone would store the jsonb
 * value null, which no reader expects.
 */
function columnValue(name: string, type: string): string {
  const at = COLUMNS.findIndex(([column]) => column === name);
  return type === 'jsonb' ? `NULLIF(x->${at}, 'null')` : type === 'text' ? `x->>${at}` : `(x->>${at})::${type}`;
}

/**
 * Each row is an array of its values rather than an object: PostgreSQL builds the jsonb of the parameter
 * before reading it, and for 10,000 full updates that was 249-324 ms for objects against 190-237 ms for
 * arrays, which also leave out the column names (2.3 of the 10.3 MB). A source's columns are overwritten
 * only when this update carries that source, so two requests that refresh different sources of one address
 * at the same time never undo each other's work.
 */
const UPSERT_SQL = `
INSERT INTO ip_record (${STORED.map(([name]) => name).join(', ')}, lookup_count, first_seen, last_seen, updated_at)
SELECT ${STORED.map(([name, type]) => columnValue(name, type)).join(', ')}, ${columnValue('lookups', 'int')}, $2, $2, $2
FROM jsonb_array_elements($1::jsonb) AS rows(x)
ON CONFLICT (ip) DO UPDATE SET
${SOURCE_NAMES.flatMap((source) =>
  [source, `${source}_status`, `${source}_fetched_at`, ...(source === 'maxmind' ? ['maxmind_database'] : [])].map(
    (column) =>
      `  ${column} = CASE WHEN EXCLUDED.${source}_status IS NULL THEN ip_record.${column} ELSE EXCLUDED.${column} END`,
  ),
).join(',\n')},
  last_seen = GREATEST(ip_record.last_seen, EXCLUDED.last_seen),
  lookup_count = ip_record.lookup_count + EXCLUDED.lookup_count,
  updated_at = CASE WHEN ${SOURCE_NAMES.map((source) => `EXCLUDED.${source}_status IS NULL`).join(' AND ')}
    THEN ip_record.updated_at ELSE EXCLUDED.updated_at END`;

const SELECT_SQL = `
SELECT ip, ${SOURCE_NAMES.map((s) => `${s}, ${s}_status, ${s}_fetched_at`).join(', ')}, maxmind_database, updated_at
FROM ip_record WHERE ip = ANY($1::text[])`;

/** A timestamptz(3) as PostgreSQL writes it for Date.prototype.toISOString's format, to the millisecond. */
const isoText = (column: string) => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/**
 * A stored record's columns as SQL expressions for reading many records at once (a job's results), to be read
 * as text (`rawText`): the timestamps come as the ISO text the record keeps, so neither postgres-date's parsing
 * nor `new Date(...).toISOString()` runs, and the jsonb columns are left to JSON.parse, only when present.
 * recordFromText reads them back.
 */
export const recordTextColumns = (alias: string): string[] => [
  `${alias}.ip`,
  ...SOURCE_NAMES.flatMap((s) => [`${alias}.${s}`, `${alias}.${s}_status`, isoText(`${alias}.${s}_fetched_at`)]),
  `${alias}.maxmind_database`,
  isoText(`${alias}.updated_at`),
];

/** pg's type parsers for a statement whose every column is taken as PostgreSQL's text for it. */
export const rawText = { getTypeParser: () => (value: string) => value };

/** One source's state from the values of recordTextColumns, from its data column on. */
function stateFromText(values: ReadonlyArray<string | null>, at: number): StoredSourceState<unknown> | null {
  const status = values[at + 1];
  if (status === null || status === undefined) return null;
  const data = values[at];
  return {
    status: status as StoredSourceState<unknown>['status'],
    fetchedAt: values[at + 2] as string,
    data: data === null || data === undefined ? null : (JSON.parse(data) as unknown),
  };
}

/** The record in `values` from index `at` on (as recordTextColumns lists them); undefined for an address with no row. */
export function recordFromText(values: ReadonlyArray<string | null>, at: number): StoredRecord | undefined {
  const ip = values[at];
  if (ip === null || ip === undefined) return undefined;
  const maxmind = stateFromText(values, at + 1);
  const database = values[at + 13];
  if (maxmind && typeof database === 'string') maxmind.database = database;
  return {
    ip,
    sources: {
      maxmind: maxmind as StoredSources['maxmind'],
      cymru: stateFromText(values, at + 4) as StoredSources['cymru'],
      greynoise: stateFromText(values, at + 7) as StoredSources['greynoise'],
      dshield: stateFromText(values, at + 10) as StoredSources['dshield'],
    },
    updatedAt: values[at + 14] as string,
  };
}

const toIso = (value: unknown): string => (value instanceof Date ? value : new Date(String(value))).toISOString();

function stateFromRow(row: Row, source: SourceName): StoredSourceState<unknown> | null {
  const status = row[`${source}_status`];
  if (typeof status !== 'string') return null;
  const state: StoredSourceState<unknown> = {
    status: status as StoredSourceState<unknown>['status'],
    fetchedAt: toIso(row[`${source}_fetched_at`]),
    data: row[source] ?? null,
  };
  if (source === 'maxmind' && typeof row.maxmind_database === 'string') state.database = row.maxmind_database;
  return state;
}

function rowToRecord(row: Row): StoredRecord {
  const sources = Object.fromEntries(SOURCE_NAMES.map((source) => [source, stateFromRow(row, source)]));
  return { ip: row.ip, sources: sources as StoredSources, updatedAt: toIso(row.updated_at) };
}

/**
 * One row of the upsert: its values in COLUMNS order. A source the update does not carry has null in all its
 * columns, which the statement reads as "keep what is stored".
 */
function updateToRow({ ip, lookups, sources }: RecordUpdate): unknown[] {
  const row: unknown[] = [ip];
  for (const source of SOURCE_NAMES) {
    const state = sources[source];
    if (state) row.push(state.data, state.status, state.fetchedAt);
    else row.push(null, null, null);
  }
  row.push(sources.maxmind ? (sources.maxmind.database ?? null) : null, lookups);
  return row;
}

/**
 * A failed statement is the database being away (these statements are fixed and tested), so the caller
 * learns that it may try again later; the cause stays attached for the log.
 */
export async function unavailableOnFailure<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (error) {
    throw new DatabaseUnavailableError('the database did not answer', { cause: error });
  }
}

/** JSON.stringify's escapes for the text PostgreSQL's jsonb refuses: NUL, and a surrogate without its pair. */
const JSONB_REFUSES = /\\u0000|\\ud[89a-f][0-9a-f]{2}/i;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/**
 * The rows as JSON text jsonb accepts. Upstream text (an AS name, a GreyNoise or DShield field) may hold a
 * NUL or a lone surrogate, and one of them would fail the write of every row of its statement, on every
 * later request too; such characters become U+FFFD. The scan costs one pass over the text, and the text is
 * made again only when it finds one.
 */
function jsonbText(rows: readonly unknown[][]): string {
  const json = JSON.stringify(rows);
  if (!JSONB_REFUSES.test(json)) return json;
  return JSON.stringify(rows, (_key, value: unknown) =>
    typeof value === 'string' ? value.replaceAll('\u0000', '\ufffd').replace(LONE_SURROGATE, '\ufffd') : value,
  );
}

/** Rows per statement: large lists are split so that PostgreSQL parses and writes the parts on several backends at once. */
const CHUNK = 2500;

/** Pool connections that writes leave to reads. */
const READ_CONNECTIONS = 2;

/**
 * The stored records. The schema, its migrations and the client are Prisma's; the two bulk statements of
 * the hot path run on the same pool directly, because Prisma's raw-query path spent about 300 ms per
 * 10,000-record write handling the parameter (measured by `npm run bench`), more than the write itself.
 */
export class RecordStore {
  /**
   * Upserts running at once: all but two of the pool's connections, which are kept for reads. A cold list's
   * chunks each write as their Team Cymru answer arrives; with every connection taken by those writes, the
   * tier read of a later chunk waited for them, and its bulk query with it (a 10,000-address list at 8
   * connections: one chunk's read took 675 ms behind 16 writes). Fewer writes at once than that made lists
   * slower: PostgreSQL then got less of the CPU, and the last chunks' writes waited longer. A write waits
   * here without holding a connection.
   */
  readonly #writes: LimitFunction;

  constructor(private readonly database: Pick<DatabaseHandle, 'prisma' | 'pool'>) {
    this.#writes = pLimit(Math.max(1, (database.pool.options.max ?? 10) - READ_CONNECTIONS));
  }

  /**
   * Runs a write in its turn. The wait for a turn is bounded like the pool's wait for a connection (the
   * database timeout): behind writes that a frozen database holds, a write gives up when a connection
   * wait would have, and is then not sent at all, instead of queueing for a statement timeout per write ahead.
   */
  #inTurn<T>(write: () => Promise<T>): Promise<T> {
    const timeoutMs = this.database.pool.options.connectionTimeoutMillis;
    if (!timeoutMs) return this.#writes(write);
    return new Promise<T>((resolve, reject) => {
      let expired = false;
      const timer = setTimeout(() => {
        expired = true;
        reject(new Error(`no turn to write within ${timeoutMs} ms`));
      }, timeoutMs);
      void this.#writes(async () => {
        if (expired) return;
        clearTimeout(timer);
        await Promise.resolve().then(write).then(resolve, reject);
      });
    });
  }

  async load(ips: readonly string[]): Promise<Map<string, StoredRecord>> {
    const found = new Map<string, StoredRecord>();
    if (ips.length === 0) return found;
    const results = await unavailableOnFailure(Promise.all(chunks(ips, CHUNK).map((part) => this.database.pool.query<Row>(SELECT_SQL, [part]))));
    for (const { rows } of results) for (const row of rows) found.set(row.ip, rowToRecord(row));
    return found;
  }

  /**
   * Upserts every update in one statement; `at` becomes updated_at of records whose sources changed
   * and last_seen of all of them. Duplicate addresses are merged, since PostgreSQL refuses to touch a row
   * twice in one INSERT … ON CONFLICT.
   *
   * Rows go in address order. Each statement locks its rows one after another and keeps them until it
   * commits, so when every statement (of this save, of a concurrent one, of another instance) locks in the
   * same order, a statement only ever waits for one that is already past that address: waits cannot form
   * a cycle, and concurrent saves of overlapping lists never deadlock, however their chunks interleave.
   */
  async save(updates: readonly RecordUpdate[], at: Date): Promise<void> {
    if (updates.length === 0) return;
    const byIp = new Map<string, RecordUpdate>();
    for (const update of updates) {
      const previous = byIp.get(update.ip);
      byIp.set(
        update.ip,
        previous
          ? { ip: update.ip, sources: { ...previous.sources, ...update.sources }, lookups: previous.lookups + update.lookups }
          : update,
      );
    }
    const rows = [...byIp.values()].sort((a, b) => (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : 0)).map(updateToRow);
    await unavailableOnFailure(
      Promise.all(chunks(rows, CHUNK).map((part) => this.#inTurn(() => this.database.pool.query(UPSERT_SQL, [jsonbText(part), at])))),
    );
  }

  /** Deletes the records of these addresses; the addresses that had one. */
  async delete(ips: readonly string[]): Promise<string[]> {
    const { rows } = await unavailableOnFailure(this.database.pool.query<{ ip: string }>('DELETE FROM ip_record WHERE ip = ANY($1::text[]) RETURNING ip', [ips]));
    return rows.map((row) => row.ip);
  }

  /**
   * Deletes up to `limit` records neither seen nor looked up since `before`, among the addresses after `after`
   * in key order, so that a cleanup walks the table once along its primary key, a short statement at a time.
   * Returns how many were deleted and the last address examined (undefined once the table's end is reached).
   */
  async deleteUnseen(before: Date, after: string, limit: number): Promise<{ deleted: number; last: string | undefined }> {
    const { rows } = await unavailableOnFailure(
      this.database.pool.query<{ ip: string; deleted: boolean }>(
        `WITH page AS (SELECT ip, last_seen < $1 AS old FROM ip_record WHERE ip > $2 ORDER BY ip LIMIT $3),
              gone AS (DELETE FROM ip_record r USING page WHERE r.ip = page.ip AND page.old AND r.last_seen < $1 RETURNING r.ip)
         SELECT page.ip, gone.ip IS NOT NULL AS deleted FROM page LEFT JOIN gone ON gone.ip = page.ip ORDER BY page.ip`,
        [before, after, limit],
      ),
    );
    return { deleted: rows.filter((row) => row.deleted).length, last: rows.length < limit ? undefined : rows.at(-1)?.ip };
  }

  async ping(): Promise<void> {
    await unavailableOnFailure(this.database.prisma.$queryRaw`SELECT 1`);
  }
}
