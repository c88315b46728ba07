import type { LookupOptions, PerAddressSource, SourceAvailability } from '../enrich/sources.js';
import { answerEach } from '../limiter/admission.js';
import type { DShield, SourceOutcome } from '../record/model.js';
import { traceUpstreamCall } from '../tracing/upstreams.js';
import { HttpUpstream, userAgent, type HttpUpstreamOptions, type UpstreamAnswer, type Verdict } from './http.js';
import { parseJsonObject, text } from './json.js';

export type DShieldSourceOptions = Omit<HttpUpstreamOptions, 'headers' | 'reprobeMs'> & {
  /** Goes into the User-Agent; without it the source stays off. */
  contact?: string;
  /** This service's version, for the User-Agent. */
  version: string;
};

export const DSHIELD_NO_CONTACT = 'DSHIELD_CONTACT is not set; ISC asks every client for a contact in its User-Agent';

/** DShield sends counts as numbers, as strings or as null. */
function integer(value: unknown): number | null {
  if (typeof value === 'number') return Number.isFinite(value) ? Math.trunc(value) : null;
  if (typeof value === 'string' && /^\s*-?\d+\s*$/.test(value)) return Number(value);
  return null;
}

function feedNames(value: unknown): string[] {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? Object.keys(value) : [];
}

/** SANS ISC DShield: how often an address was reported attacking sensors, and which threat feeds list it. */
export class DShieldSource implements PerAddressSource<DShield> {
  readonly #http: HttpUpstream | null;

  constructor(options: DShieldSourceOptions) {
    const { contact } = options;
    this.#http = contact
      ? new HttpUpstream({
          ...options,
          headers: { accept: 'application/json', 'user-agent': userAgent(options.version, contact) },
        })
      : null;
  }

  unsupported(): undefined {
    return undefined;
  }

  availability(): SourceAvailability {
    return this.#http?.availability() ?? { status: 'disabled', reason: DSHIELD_NO_CONTACT };
  }

  lookup(ips: readonly string[], options: LookupOptions): Promise<Map<string, SourceOutcome<DShield>>> {
    const http = this.#http;
    if (!http) return Promise.resolve(answerEach(ips, () => ({ status: 'disabled', reason: DSHIELD_NO_CONTACT })));
    return http.lookupEach(ips, options, (ip, run) =>
      traceUpstreamCall('dshield', () => http.get(`/api/ip/${ip}?json`, run, (answer) => this.#interpret(answer))),
    );
  }

  async close(): Promise<void> {
    await this.#http?.close();
  }

  #interpret(answer: UpstreamAnswer): Verdict<DShield> {
    const body = parseJsonObject(answer.body);
    const refusal = text(body?.error);
    if (refusal) return { status: 'error', error: refusal.slice(0, 200) };
    if (answer.statusCode !== 200) return { status: 'error', error: `HTTP ${answer.statusCode}` };
    if (!body) return { status: 'retry', error: 'unparseable JSON' };
    const ip = body.ip;
    if (typeof ip !== 'object' || ip === null || Array.isArray(ip)) {
      return { status: 'error', error: 'answer without an "ip" object' };
    }
    const record = ip as Record<string, unknown>;
    const data: DShield = {
      attacks: integer(record.attacks),
      reports: integer(record.count),
      firstSeen: text(record.mindate),
      lastSeen: text(record.maxdate),
      threatFeeds: feedNames(record.threatfeeds),
      abuseContact: text(record.asabusecontact),
    };
    if (data.reports !== null || data.attacks !== null || data.threatFeeds.length > 0) return { status: 'ok', data };
    // No reports of the address itself; what ISC still says about its network (the abuse contact) is kept.
    const anything = data.abuseContact !== null || data.firstSeen !== null || data.lastSeen !== null;
    return { status: 'not_found', data: anything ? data : null };
  }
}
