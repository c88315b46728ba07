import type { ParsedAddress } from '../ip/address.js';
import {
  SOURCE_NAMES,
  type IpRecord,
  type SourceName,
  type SourceOutcome,
  type SourceReport,
  type StoredRecord,
} from '../record/model.js';

export type Outcomes = Partial<Record<SourceName, SourceOutcome<unknown>>>;

const NO_SOURCES = Object.fromEntries(
  SOURCE_NAMES.map((source) => [source, { status: 'skipped', fetchedAt: null }]),
) as IpRecord['sources'];

const FAILED: ReadonlySet<string> = new Set(['error', 'rate_limited']);

/** A report of what is stored; `database` for MaxMind's, which names the databases that answered. */
function storedReport(status: SourceReport['status'], fetchedAt: string | null, database: string | undefined): SourceReport {
  return database === undefined ? { status, fetchedAt } : { status, fetchedAt, database };
}

function report(source: SourceName, record: StoredRecord, outcome: SourceOutcome<unknown> | undefined): SourceReport {
  const state = record.sources[source];
  const fetchedAt = state?.fetchedAt ?? null;
  if (!outcome) return state ? storedReport(state.status, fetchedAt, state.database) : { status: 'skipped', fetchedAt };
  switch (outcome.status) {
    case 'ok':
    case 'not_found':
      return storedReport(outcome.status, fetchedAt, state?.database);
    case 'error':
      return { status: 'error', fetchedAt, error: outcome.error };
    case 'rate_limited':
      return { status: 'rate_limited', fetchedAt, retryAt: outcome.retryAt };
    default:
      return outcome.reason ? { status: outcome.status, fetchedAt, error: outcome.reason } : { status: outcome.status, fetchedAt };
  }
}

/**
 * A source switched off because the upstream refused our credentials failed the user, who expected its data;
 * one switched off by configuration (no DSHIELD_CONTACT) was never going to answer, and leaves the record ok.
 */
function refusedAny(outcomes: Outcomes): boolean {
  return (
    outcomes.greynoise?.status === 'disabled' && outcomes.greynoise.refused === true
  ) || (outcomes.dshield?.status === 'disabled' && outcomes.dshield.refused === true);
}

/** The answer for one routable address: its stored record as merged now, and what this request saw. */
export function routableView(input: string, record: StoredRecord, outcomes: Outcomes): IpRecord {
  const maxmind = record.sources.maxmind?.data;
  const cymru = record.sources.cymru;
  // Spelled out rather than mapped over SOURCE_NAMES: this runs for every address of every answer.
  const sources = {
    maxmind: report('maxmind', record, outcomes.maxmind),
    cymru: report('cymru', record, outcomes.cymru),
    greynoise: report('greynoise', record, outcomes.greynoise),
    dshield: report('dshield', record, outcomes.dshield),
  };
  const failed =
    FAILED.has(sources.maxmind.status) ||
    FAILED.has(sources.cymru.status) ||
    FAILED.has(sources.greynoise.status) ||
    FAILED.has(sources.dshield.status) ||
    refusedAny(outcomes);
  return {
    ip: record.ip,
    input,
    status: failed ? 'partial' : 'ok',
    asn: maxmind?.asn ?? (cymru?.status === 'ok' ? cymru.data : null),
    geo: maxmind?.geo ?? null,
    greynoise: record.sources.greynoise?.data ?? null,
    dshield: record.sources.dshield?.data ?? null,
    sources,
    updatedAt: record.updatedAt,
  };
}

/** Outcomes that say the same thing every time: nothing was fetched, for a reason that does not change. */
const STATIC: ReadonlySet<string> = new Set(['skipped', 'disabled', 'unavailable', 'unsupported']);

/**
 * Serialized answers by stored record object: those that nothing but the record shaped (the key ''), by far
 * the most, and apart from them those that static outcomes shaped too, by those outcomes. Kept apart so that
 * the common answer costs no Map of its own per record, which every scavenge would copy for as long as the
 * record lives.
 */
const serialized = new WeakMap<StoredRecord, string>();
const serializedWith = new WeakMap<StoredRecord, Map<string, string>>();

/**
 * What, besides the record, shapes an answer: '' when nothing does; undefined when something that changes
 * from request to request does (an error, a rate limit). An answer fetched now (`ok`, `not_found`) was
 * stored with that very status and fetchedAt in the record, and `report` gives it the same text as that
 * stored state with no outcome: so the answer of the request that fetched a record is the one every later
 * request finds cached, and a list asked again right after it costs no serialization.
 */
function staticKey(outcomes: Outcomes): string | undefined {
  let key = '';
  for (const source of SOURCE_NAMES) {
    const outcome = outcomes[source];
    if (!outcome || outcome.status === 'ok' || outcome.status === 'not_found') continue;
    if (!STATIC.has(outcome.status)) return undefined;
    // A refusal makes the record partial, so it shapes the answer as much as the status does.
    const refused = outcome.status === 'disabled' && outcome.refused ? ':refused' : '';
    key += `\n${source}:${outcome.status}${refused}:${'reason' in outcome ? (outcome.reason ?? '') : ''}`;
  }
  return key;
}

/**
 * The answer for one routable address as JSON text. An address answered from the cache tiers with
 * nothing fetched gives the same text each time for the same stored record, so that text is made once
 * per record version; a repeated list or a hot address then costs no serialization. Only an input in
 * canonical form is kept: the answer repeats the input, and the spellings of one address
 * (" 8.8.8.8", "2001:DB8::1") are unbounded.
 */
export function routableJson(input: string, record: StoredRecord, outcomes: Outcomes): string {
  const key = input === record.ip ? staticKey(outcomes) : undefined;
  if (key === undefined) return JSON.stringify(routableView(input, record, outcomes));
  if (key === '') {
    let json = serialized.get(record);
    if (json === undefined) serialized.set(record, (json = JSON.stringify(routableView(input, record, outcomes))));
    return json;
  }
  let byKey = serializedWith.get(record);
  const hit = byKey?.get(key);
  if (hit !== undefined) return hit;
  const json = JSON.stringify(routableView(input, record, outcomes));
  if (!byKey) serializedWith.set(record, (byKey = new Map<string, string>()));
  byKey.set(key, json);
  return json;
}

/** The answer for an input that is not looked up: not an address, or a private/reserved one. */
export function unroutedView(input: string, parsed: Exclude<ParsedAddress, { kind: 'routable' }>): IpRecord {
  const common = { input, asn: null, geo: null, greynoise: null, dshield: null, sources: NO_SOURCES, updatedAt: null };
  return parsed.kind === 'invalid'
    ? { ip: input, status: 'invalid', error: parsed.error, ...common }
    : { ip: parsed.ip, status: 'bogon', range: parsed.range, ...common };
}
