import { describe, expect, it } from 'vitest';
import { routableJson } from '../../src/enrich/record-view.js';
import type { IpRecord, StoredRecord } from '../../src/record/model.js';

const fetchedAt = '2026-11-22T10:00:00.000Z';
const record: StoredRecord = {
  ip: '8.8.8.8',
  sources: {
    maxmind: { status: 'not_found', fetchedAt, data: { geo: null, asn: null }, database: 'GeoLite2-City 2026-11-17' },
    cymru: {
      status: 'ok',
      fetchedAt,
      data: { number: 15169, numbers: [15169], name: 'GOOGLE, US', prefix: '8.8.8.0/24', country: 'US', registry: 'arin', allocated: '1992-12-01', source: 'cymru' },
    },
    greynoise: null,
    dshield: null,
  },
  updatedAt: fetchedAt,
};

const parse = (json: string) => JSON.parse(json) as IpRecord;

describe('serialized answers', () => {
  it('echoes each spelling of an address as its input, before and after the canonical answer is reused', () => {
    const canonical = routableJson('8.8.8.8', record, {});
    expect(routableJson('8.8.8.8', record, {})).toBe(canonical);
    expect(parse(routableJson(' 8.8.8.8', record, {}))).toMatchObject({ ip: '8.8.8.8', input: ' 8.8.8.8' });
    expect(parse(routableJson('8.8.8.8\t', record, {}))).toMatchObject({ ip: '8.8.8.8', input: '8.8.8.8\t' });
    expect(parse(routableJson('8.8.8.8', record, {}))).toMatchObject({ ip: '8.8.8.8', input: '8.8.8.8' });
  });

  it('keeps answers shaped by different static outcomes apart', () => {
    const plain = parse(routableJson('8.8.8.8', record, {}));
    const withoutGreyNoise = parse(routableJson('8.8.8.8', record, { greynoise: { status: 'disabled', reason: 'GreyNoise rejected the API key (401)' } }));
    expect(plain.sources.greynoise).toEqual({ status: 'skipped', fetchedAt: null });
    expect(withoutGreyNoise.sources.greynoise).toEqual({ status: 'disabled', fetchedAt: null, error: 'GreyNoise rejected the API key (401)' });
    expect(parse(routableJson('8.8.8.8', record, {})).sources.greynoise).toEqual({ status: 'skipped', fetchedAt: null });
  });

  it('keeps a source refused by the upstream apart from one off by configuration with the same reason', () => {
    const reason = 'switched off';
    const off = parse(routableJson('8.8.8.8', record, { greynoise: { status: 'disabled', reason } }));
    const refused = parse(routableJson('8.8.8.8', record, { greynoise: { status: 'disabled', reason, refused: true } }));
    expect(off.status).toBe('ok');
    expect(refused.status).toBe('partial');
    expect(parse(routableJson('8.8.8.8', record, { greynoise: { status: 'disabled', reason } })).status).toBe('ok');
  });
});
