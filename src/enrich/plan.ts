import type { SourceName, SourceOutcome, StoredRecord, StoredSourceState } from '../record/model.js';
import type { Outcomes } from './record-view.js';
import type { Freshness, SourceAvailability } from './sources.js';

export const RATE_LIMITED_SOURCES = ['greynoise', 'dshield'] as const;
export type RateLimitedSource = (typeof RATE_LIMITED_SOURCES)[number];

type SwitchableSource = Exclude<SourceName, 'cymru'>;

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
  /**
   * The outcome a source that is not ready gives every address it is due for, undefined while it is ready.
   * Asked only when some address is due for the source, so that a cached answer never asks.
   */
  unavailable(source: SwitchableSource): SourceOutcome<never> | undefined;
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

/**
 * The plans that settle no outcome, one per combination of sources due, shared: planning a cached address, or
 * a cold one of a list that asks the same sources of every address, allocates nothing, and the request keeps
 * no object per address for it (such objects outlive a few scavenges and end as garbage in the old generation).
 */
const SHARED_PLANS: readonly AddressPlan[] = Array.from({ length: 16 }, (_, bits) =>
  Object.freeze({ maxmind: (bits & 1) !== 0, cymru: (bits & 2) !== 0, greynoise: (bits & 4) !== 0, dshield: (bits & 8) !== 0, answered: undefined }),
);
const ASN_FROM_MAXMIND: SourceOutcome<never> = { status: 'skipped', reason: 'MaxMind knows the ASN' };

/**
 * The records of a list mostly share their fetchedAt (one request wrote them all), so the last text parsed
 * is kept: Date.parse was the largest single cost of planning a cached 10,000-address list (12–18 ms of its
 * 40–130 ms in the service, --cpu-prof).
 */
let lastFetchedAt = '';
let lastFetchedMs = Number.NaN;

function fetchedMs(fetchedAt: string): number {
  if (fetchedAt !== lastFetchedAt) {
    lastFetchedMs = Date.parse(fetchedAt);
    lastFetchedAt = fetchedAt;
  }
  return lastFetchedMs;
}

function isFresh(state: StoredSourceState<unknown> | null | undefined, ttlMs: number, now: number): boolean {
  return state != null && now - fetchedMs(state.fetchedAt) < ttlMs;
}

/** What a source that is not ready answers; a source switched off because the upstream refused us says so. */
export function unavailableOutcome(source: SwitchableSource, availability: SourceAvailability): SourceOutcome<never> | undefined {
  const { status, reason, refused } = availability;
  if (status === 'ready') return undefined;
  return { status, reason: reason ?? (source === 'maxmind' ? 'not configured' : ''), ...(refused ? { refused } : {}) };
}

/**
 * Decides, from the record the tiers held (if any), which sources an address must be asked about now.
 * It records nothing anywhere: the same record and context always give the same plan.
 */
export function planAddress(ip: string, known: StoredRecord | undefined, context: PlanContext): AddressPlan {
  const { requested, refresh } = context;
  let answered: Outcomes | undefined;

  let maxmind = false;
  if (requested.has('maxmind')) {
    const state = known?.sources.maxmind;
    if (refresh || !state || state.database !== context.maxmindVersion) {
      const outcome = context.unavailable('maxmind');
      if (outcome) (answered ??= {}).maxmind = outcome;
      else maxmind = true;
    }
  }

  let cymru = false;
  if (requested.has('cymru')) {
    // A stored ASN from MaxMind spares the query only while that MaxMind answer stands.
    if (!maxmind && known?.sources.maxmind?.data?.asn) {
      if (!known.sources.cymru) (answered ??= {}).cymru = ASN_FROM_MAXMIND;
    } else {
      cymru = refresh || !isFresh(known?.sources.cymru, context.freshness.cymru, context.now);
    }
  }

  const greynoise = rateLimitedPlan('greynoise', ip, known, context);
  const dshield = rateLimitedPlan('dshield', ip, known, context);
  if (greynoise !== true && greynoise !== false) (answered ??= {}).greynoise = greynoise;
  if (dshield !== true && dshield !== false) (answered ??= {}).dshield = dshield;

  if (answered === undefined) {
    return SHARED_PLANS[(maxmind ? 1 : 0) | (cymru ? 2 : 0) | (greynoise === true ? 4 : 0) | (dshield === true ? 8 : 0)] as AddressPlan;
  }
  return { maxmind, cymru, greynoise: greynoise === true, dshield: dshield === true, answered };
}

/** Whether a rate-limited source is due for an address (true), not needed (false), or answered without asking. */
function rateLimitedPlan(
  source: RateLimitedSource,
  ip: string,
  known: StoredRecord | undefined,
  context: PlanContext,
): boolean | SourceOutcome<never> {
  if (!context.requested.has(source)) return false;
  if (!context.refresh && isFresh(known?.sources[source], context.freshness[source], context.now)) return false;
  const reason = context.unsupported[source](ip);
  if (reason !== undefined) return { status: 'unsupported', reason };
  return context.unavailable(source) ?? true;
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
