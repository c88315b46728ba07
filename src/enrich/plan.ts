import type { SourceName, SourceOutcome, StoredRecord, StoredSourceState } from '../record/model.js';
import type { Outcomes } from './record-view.js';
import type { Freshness, SourceAvailability } from './sources.js';

export const RATE_LIMITED_SOURCES = ['greynoise', 'dshield'] as const;
export type RateLimitedSource = (typeof RATE_LIMITED_SOURCES)[number];

/** What one request knows of the sources before it looks at any address. */
export interface PlanContext {
  requested: ReadonlySet<SourceName>;
  /** Nothing stored counts as fresh. */
  refresh: boolean;
  /** Epoch ms that freshness is judged at. */
  now: number;
  freshness: Freshness;
  /** The loaded MaxMind build: an answer from another build is stale. */
  maxmindVersion: string | null;
  /** Each source's state when the request began; only `ready` sources are asked. */
  availability: Readonly<Record<SwitchableSource, SourceAvailability>>;
  /** Why a rate-limited source cannot answer for an address at all (IPv6 for GreyNoise), decided without a request. */
  unsupported: Readonly<Record<RateLimitedSource, (ip: string) => string | undefined>>;
}

/** What one address needs from each source, decided once from what the tiers held. */
export interface AddressPlan {
  readonly maxmind: boolean;
  /** Asked only if MaxMind, as answered now, names no ASN either: see `cymruStillDue`. */
  readonly cymru: boolean;
  readonly greynoise: boolean;
  readonly dshield: boolean;
  /** Outcomes settled without asking: unsupported, switched off, or not needed. */
  readonly answered: Outcomes | undefined;
}

/** The plan of nearly every cached address, shared so that planning one allocates nothing. */
const NOTHING_DUE: AddressPlan = { maxmind: false, cymru: false, greynoise: false, dshield: false, answered: undefined };
const ASN_FROM_MAXMIND: SourceOutcome<never> = { status: 'skipped', reason: 'MaxMind knows the ASN' };

export function isFresh(state: StoredSourceState<unknown> | null | undefined, ttlMs: number, now: number): boolean {
  return state != null && now - Date.parse(state.fetchedAt) < ttlMs;
}

type SwitchableSource = Exclude<SourceName, 'cymru'>;

/**
 * The outcome each source that is not ready gives every address it was due for, made once per request
 * rather than once per address. A source switched off because the upstream refused us says so.
 */
export function unavailableOutcomes(context: PlanContext): Partial<Record<SwitchableSource, SourceOutcome<never>>> {
  const outcomes: Partial<Record<SwitchableSource, SourceOutcome<never>>> = {};
  for (const source of ['maxmind', ...RATE_LIMITED_SOURCES] as const) {
    const { status, reason, refused } = context.availability[source];
    if (status === 'ready') continue;
    const fallback = source === 'maxmind' ? 'not configured' : '';
    outcomes[source] = { status, reason: reason ?? fallback, ...(refused ? { refused } : {}) };
  }
  return outcomes;
}

/**
 * Decides, from the record the tiers held (if any), which sources an address must be asked about now.
 * Pure: the same record and context always give the same plan, and nothing is recorded anywhere.
 */
export function planAddress(
  ip: string,
  known: StoredRecord | undefined,
  context: PlanContext,
  unavailable: ReturnType<typeof unavailableOutcomes>,
): AddressPlan {
  const { requested, refresh, now, freshness } = context;
  let answered: Outcomes | undefined;
  const answer = (source: SourceName, outcome: SourceOutcome<unknown>) => ((answered ??= {})[source] = outcome);

  let maxmind = false;
  if (requested.has('maxmind')) {
    const state = known?.sources.maxmind;
    if (refresh || !state || state.database !== context.maxmindVersion) {
      const outcome = unavailable.maxmind;
      if (outcome) answer('maxmind', outcome);
      else maxmind = true;
    }
  }

  let cymru = false;
  if (requested.has('cymru')) {
    // A stored ASN from MaxMind spares the query only while that MaxMind answer stands.
    if (!maxmind && known?.sources.maxmind?.data?.asn) {
      if (!known.sources.cymru) answer('cymru', ASN_FROM_MAXMIND);
    } else {
      cymru = refresh || !isFresh(known?.sources.cymru, freshness.cymru, now);
    }
  }

  const due = { greynoise: false, dshield: false };
  for (const source of RATE_LIMITED_SOURCES) {
    if (!requested.has(source)) continue;
    if (!refresh && isFresh(known?.sources[source], freshness[source], now)) continue;
    const reason = context.unsupported[source](ip);
    if (reason !== undefined) answer(source, { status: 'unsupported', reason });
    else if (unavailable[source]) answer(source, unavailable[source]);
    else due[source] = true;
  }

  if (!maxmind && !cymru && !due.greynoise && !due.dshield && answered === undefined) return NOTHING_DUE;
  return { maxmind, cymru, greynoise: due.greynoise, dshield: due.dshield, answered };
}

export function nothingDue(plan: AddressPlan): boolean {
  return !plan.maxmind && !plan.cymru && !plan.greynoise && !plan.dshield;
}

/**
 * Whether an address planned for Team Cymru still needs it once MaxMind has answered: not when the answer
 * (new, or stored and still standing) names the ASN. The outcome says so when nothing was stored from Cymru.
 */
export function cymruStillDue(
  maxmind: StoredSourceState<{ asn: unknown } | null> | null | undefined,
  storedCymru: unknown,
): { due: true } | { due: false; outcome: SourceOutcome<never> | undefined } {
  if (!maxmind?.data?.asn) return { due: true };
  return { due: false, outcome: storedCymru ? undefined : ASN_FROM_MAXMIND };
}
