import { describe, expect, it } from 'vitest';
import { planAddress, type PlanContext } from '../../src/enrich/plan.js';
import { SOURCE_NAMES, type SourceName, type StoredRecord } from '../../src/record/model.js';

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 11, 1);
const BUILD = 'GeoLite2-City 2026-11-17';

function context(overrides: Partial<PlanContext> = {}): PlanContext & { asked: string[] } {
  const asked: string[] = [];
  return {
    requested: new Set<SourceName>(SOURCE_NAMES),
    refresh: false,
    now: NOW,
    freshness: { cymru: 7 * DAY, greynoise: DAY, dshield: DAY },
    maxmindVersion: BUILD,
    unavailable: (source) => {
      asked.push(source);
      return undefined;
    },
    unsupported: { greynoise: (ip) => (ip.includes(':') ? 'IPv4 only' : undefined), dshield: () => undefined },
    asked,
    ...overrides,
  };
}

function stored(ageMs: number, options: { maxmindAsn?: boolean; build?: string } = {}): StoredRecord {
  const fetchedAt = new Date(NOW - ageMs).toISOString();
  const asn = options.maxmindAsn
    ? { number: 1, numbers: [1], name: null, prefix: null, country: null, registry: null, allocated: null, source: 'maxmind' as const }
    : null;
  return {
    ip: '8.8.8.8',
    sources: {
      maxmind: { status: 'ok', fetchedAt, data: { geo: null, asn }, database: options.build ?? BUILD },
      cymru: options.maxmindAsn ? null : { status: 'not_found', fetchedAt, data: null },
      greynoise: { status: 'not_found', fetchedAt, data: null },
      dshield: { status: 'not_found', fetchedAt, data: null },
    },
    updatedAt: fetchedAt,
  };
}

describe('planAddress', () => {
  it('asks nothing, and not even for the sources state, for a record that is fresh everywhere', () => {
    const ctx = context();
    const plan = planAddress('8.8.8.8', stored(1000), ctx);
    expect(plan).toMatchObject({ maxmind: false, cymru: false, greynoise: false, dshield: false, answered: undefined });
    expect(planAddress('8.8.8.8', stored(1000), ctx)).toBe(plan);
    expect(ctx.asked).toEqual([]);
  });

  it('asks each source only once its own freshness has run out', () => {
    expect(planAddress('8.8.8.8', stored(2 * DAY), context())).toMatchObject({ maxmind: false, cymru: false, greynoise: true, dshield: true });
    expect(planAddress('8.8.8.8', stored(8 * DAY), context())).toMatchObject({ cymru: true, greynoise: true });
  });

  it('asks MaxMind again when its database build changed, whatever the age', () => {
    expect(planAddress('8.8.8.8', stored(1000, { build: 'GeoLite2-City 2026-11-10' }), context())).toMatchObject({ maxmind: true, cymru: false });
  });

  it('asks every requested source of an unknown address, and only those', () => {
    const plan = planAddress('8.8.8.8', undefined, context({ requested: new Set<SourceName>(['cymru', 'dshield']) }));
    expect(plan).toMatchObject({ maxmind: false, cymru: true, greynoise: false, dshield: true });
  });

  it('answers Team Cymru as skipped while MaxMind names the ASN', () => {
    const plan = planAddress('8.8.8.8', stored(8 * DAY, { maxmindAsn: true }), context());
    expect(plan.cymru).toBe(false);
    expect(plan.answered?.cymru).toEqual({ status: 'skipped', reason: 'MaxMind knows the ASN' });
  });

  it('answers an address a source cannot serve, and a source that is off, without asking them', () => {
    const off = context({ unavailable: (source) => (source === 'dshield' ? { status: 'disabled', reason: 'no contact' } : undefined) });
    const plan = planAddress('2001:db8::1', undefined, off);
    expect(plan).toMatchObject({ greynoise: false, dshield: false, maxmind: true, cymru: true });
    expect(plan.answered).toEqual({
      greynoise: { status: 'unsupported', reason: 'IPv4 only' },
      dshield: { status: 'disabled', reason: 'no contact' },
    });
  });

  it('asks every requested source again on refresh, however fresh', () => {
    expect(planAddress('8.8.8.8', stored(1000), context({ refresh: true }))).toMatchObject({
      maxmind: true,
      cymru: true,
      greynoise: true,
      dshield: true,
    });
  });
});
