import type { IpRecord, SourceName, SourceReport } from '../../src/record/model.js';
import { duration, moment } from './format.js';

/*
 * A record's state in words for an analyst: what the status means for this address, and what each source
 * said, with when to try again.
 */

/** A record as the job's results give it: an address the job has not finished yet is "pending". */
export type ResultRecord = Omit<IpRecord, 'status'> & { status: IpRecord['status'] | 'pending' };

export const SOURCES: readonly SourceName[] = ['maxmind', 'cymru', 'greynoise', 'dshield'];

export const SOURCE_LABELS: Record<SourceName, string> = {
  maxmind: 'MaxMind',
  cymru: 'Team Cymru',
  greynoise: 'GreyNoise',
  dshield: 'DShield (ISC)',
};

function retryWords(retryAt: string | undefined, now: number): string {
  if (retryAt === undefined) return 'try again later';
  const left = (Date.parse(retryAt) - now) / 1000;
  return left > 0 ? `try again after ${moment(retryAt)} (in ${duration(left)})` : 'it can be asked again now';
}

/** What one source's status says, as a phrase after the source's name. */
export function sourceWords(report: SourceReport, now = Date.now()): string {
  switch (report.status) {
    case 'ok':
      return 'answered';
    case 'not_found':
      return 'knows nothing of this address (a real answer, kept like any other)';
    case 'error':
      return `failed: ${report.error ?? 'no reason given'}`;
    case 'skipped':
      return 'was not asked (not requested, or not needed: Team Cymru is asked only when MaxMind has no AS)';
    case 'unavailable':
      return 'is not configured on this service';
    case 'disabled':
      return `is switched off${report.error ? `: ${report.error}` : ''}`;
    case 'unsupported':
      return 'cannot answer for this kind of address (GreyNoise has no IPv6)';
    case 'rate_limited':
      return `was rate limited before it could answer: ${retryWords(report.retryAt, now)}`;
  }
}

/** Sentences that explain the record's status. */
export function statusWords(record: ResultRecord, now = Date.now()): string[] {
  switch (record.status) {
    case 'invalid':
      return [`“${record.input}” is not an IP address: ${record.error ?? 'it cannot be read as one'}.`];
    case 'bogon':
      return [`A ${record.range ?? 'private or reserved'} address: it is not reachable on the Internet, so no source is asked.`];
    case 'pending':
      return ['The job has not finished this address yet; what is shown is what was stored before.'];
    case 'ok':
      return ['Every source asked has answered.'];
    case 'partial': {
      const failed = SOURCES.filter((name) => ['error', 'rate_limited', 'disabled'].includes(record.sources[name].status));
      return [
        'Some sources could not answer for this address; the others are shown.',
        ...failed.map((name) => `${SOURCE_LABELS[name]} ${sourceWords(record.sources[name], now)}.`),
      ];
    }
  }
}

/** The upstreams' own pages about the address, where they have one. */
export function upstreamLinks(record: ResultRecord): Array<{ label: string; href: string }> {
  if (record.status === 'invalid' || record.status === 'bogon') return [];
  const ip = encodeURIComponent(record.ip);
  return [
    { label: 'GreyNoise Visualizer', href: record.greynoise?.link ?? `https://viz.greynoise.io/ip/${ip}` },
    { label: 'SANS ISC', href: `https://isc.sans.edu/ipinfo/${ip}` },
  ];
}
