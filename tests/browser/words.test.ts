import { describe, expect, it } from 'vitest';
import type { IpRecord } from '../../src/record/model.js';
import { statusWords, upstreamLinks, type ResultRecord } from '../../web/src/words.js';

/* The record's status as the page says it in words. */

const NOW = Date.parse('2026-12-01T12:00:00Z');
const fetched = '2026-12-01T11:59:00.000Z';

function record(status: IpRecord['status'], sources: Partial<IpRecord['sources']>, extra: Partial<IpRecord> = {}): ResultRecord {
  return {
    ip: '198.51.100.7',
    input: '198.51.100.7',
    status,
    asn: null,
    geo: null,
    greynoise: null,
    dshield: null,
    sources: {
      maxmind: { status: 'ok', fetchedAt: fetched },
      cymru: { status: 'ok', fetchedAt: fetched },
      greynoise: { status: 'ok', fetchedAt: fetched },
      dshield: { status: 'ok', fetchedAt: fetched },
      ...sources,
    },
    updatedAt: fetched,
    ...extra,
  };
}

describe('statusWords', () => {
  it('says of a partial record which source failed and why, and when a rate-limited one may be asked again', () => {
    const words = statusWords(
      record('partial', {
        greynoise: { status: 'error', fetchedAt: null, error: 'no answer before the deadline' },
        dshield: { status: 'rate_limited', fetchedAt: null, retryAt: '2026-12-01T12:00:42.000Z' },
      }),
      NOW,
    );
    expect(words[0]).toBe('Some sources could not answer for this address; the others are shown.');
    expect(words[1]).toBe('GreyNoise failed: no answer before the deadline.');
    expect(words[2]).toMatch(/^DShield \(ISC\) was rate limited before it could answer: try again after .+ \(in 42 s\)\.$/);
    expect(words).toHaveLength(3);
  });

  it('says why a source was switched off', () => {
    const words = statusWords(record('partial', { greynoise: { status: 'disabled', fetchedAt: null, error: 'GreyNoise refused the API key (401)' } }), NOW);
    expect(words[1]).toBe('GreyNoise is switched off: GreyNoise refused the API key (401).');
  });

  it('names the range of a bogon and the reason an input is not an address, with no link upstream', () => {
    const bogon = record('bogon', {}, { ip: '10.1.2.3', input: '10.1.2.3', range: 'private-use' });
    expect(statusWords(bogon, NOW)).toEqual(['A private-use address: it is not reachable on the Internet, so no source is asked.']);
    expect(upstreamLinks(bogon)).toEqual([]);
    const invalid = record('invalid', {}, { ip: '010.1.1.1', input: '010.1.1.1', error: 'a leading zero is not allowed' });
    expect(statusWords(invalid, NOW)).toEqual(['“010.1.1.1” is not an IP address: a leading zero is not allowed.']);
  });

  it("links an address to GreyNoise's and ISC's pages, GreyNoise's own link first when it gave one", () => {
    const known = record('ok', {}, { greynoise: { noise: true, riot: false, classification: 'malicious', name: null, link: 'https://viz.greynoise.io/ip/198.51.100.7', lastSeen: null } });
    expect(upstreamLinks(known).map((link) => link.href)).toEqual(['https://viz.greynoise.io/ip/198.51.100.7', 'https://isc.sans.edu/ipinfo/198.51.100.7']);
    expect(upstreamLinks(record('ok', {}, { ip: '2001:db8::1' }))[1]?.href).toBe('https://isc.sans.edu/ipinfo/2001%3Adb8%3A%3A1');
  });
});
