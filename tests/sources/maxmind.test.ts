import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open, Reader, type Response } from 'maxmind';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MaxMindSource, type MaxMindOptions } from '../../src/sources/maxmind.js';
import { buildMmdb, mmdb, writeMmdb, type MmdbMap, type MmdbNetwork, type MmdbOptions } from '../support/mmdb-writer.js';

const geoipDatabase = createRequire(import.meta.url)('geoip-database') as { city: string; country: string };

const epoch = (date: string) => Date.parse(`${date}T12:00:00Z`) / 1000;

function cityRecord(iso: string, country: string, city: string, latitude: number, longitude: number, timezone: string) {
  const countryRecord = { geoname_id: 1, iso_code: iso, names: { en: country, de: `${country} (de)` } };
  return {
    city: { geoname_id: 2, names: { en: city } },
    country: countryRecord,
    registered_country: countryRecord,
    location: { accuracy_radius: mmdb.uint16(20), latitude, longitude, time_zone: timezone },
  };
}

const asnRecord = (number: number, organization: string) => ({
  autonomous_system_number: number,
  autonomous_system_organization: organization,
});

const CITY: Omit<MmdbOptions, 'buildEpoch'> = {
  databaseType: 'GeoLite2-City',
  networks: [
    { cidr: '81.2.69.0/24', data: cityRecord('GB', 'United Kingdom', 'London', 51.5142, -0.0931, 'Europe/London') },
    { cidr: '2a02:d8::/32', data: cityRecord('SE', 'Sweden', 'Stockholm', 59.3294, 18.0686, 'Europe/Stockholm') },
    // An anycast range MaxMind places in no country: only the registration is known.
    { cidr: '5.5.5.0/24', data: { registered_country: { geoname_id: 3, iso_code: 'DE', names: { en: 'Germany' } } } },
  ],
};

function asnDatabase(buildDate: string, organization: string): MmdbOptions {
  return {
    databaseType: 'GeoLite2-ASN',
    buildEpoch: epoch(buildDate),
    recordSize: 28,
    networks: [
      { cidr: '81.2.0.0/16', data: asnRecord(20712, organization) },
      { cidr: '81.2.69.0/24', data: asnRecord(64500, 'More Specific Ltd') },
      { cidr: '2a02:d8::/32', data: asnRecord(8473, 'Bahnhof AB') },
    ],
  };
}

function captureLogs() {
  const lines: Array<{ level: number; msg: string; path?: string }> = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as never) });
  const warnings = () => lines.filter((line) => line.level === 40);
  return { logger, warnings };
}

async function until(condition: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

let dir: string;
const sources: MaxMindSource[] = [];

async function openSource(options: MaxMindOptions): Promise<MaxMindSource> {
  const source = await MaxMindSource.open({ watch: false, ...options });
  sources.push(source);
  return source;
}

/** What geoipupdate does: write the whole file under another name, then rename it over the old one. */
async function replaceFile(path: string, contents: Buffer): Promise<void> {
  const temporary = `${path}.${Math.random().toString(36).slice(2)}.tmp`;
  await writeFile(temporary, contents);
  await rename(temporary, path);
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'maxmind-test-'));
});

afterEach(async () => {
  await Promise.all(sources.splice(0).map((source) => source.close()));
  await rm(dir, { recursive: true, force: true });
});

describe('the test MaxMind DB writer', () => {
  const everyType: MmdbMap = {
    utf8: 'Zürich 東京',
    empty: '',
    double: -97.822,
    float: mmdb.float(1.5),
    bytes: new Uint8Array([0, 1, 254, 255]),
    uint16: mmdb.uint16(65_535),
    uint32: 4_294_967_295,
    uint32Zero: 0,
    int32Negative: -2_147_483_648,
    int32Positive: mmdb.int32(8_388_608),
    uint64: 18_446_744_073_709_551_615n,
    uint128: 2n ** 128n - 1n,
    booleans: [true, false],
    array: ['a', 1, [2, { nested: 'map' }]],
    emptyArray: [],
    map: { names: { en: 'Germany', de: 'Deutschland' } },
    emptyMap: {},
    // Sizes past the one-byte (29) and two-byte (285) length forms.
    medium: 'm'.repeat(100),
    long: 'l'.repeat(70_000),
    // Written as pointers to the first copy.
    repeated: ['Zürich 東京', 'Zürich 東京'],
  };
  const expected = {
    ...everyType,
    float: 1.5,
    uint16: 65_535,
    int32Positive: 8_388_608,
    bytes: Buffer.from([0, 1, 254, 255]),
  };

  it.each([24, 28, 32] as const)('round-trips every data type through node-maxmind with %i-bit records', (recordSize) => {
    const reader = new Reader<Response>(
      buildMmdb({ databaseType: 'Test-Types', buildEpoch: epoch('2026-11-18'), recordSize, networks: [{ cidr: '1.2.3.0/24', data: everyType }] }),
    );
    expect(reader.get('1.2.3.4')).toEqual(expected);
    expect(reader.metadata).toMatchObject({
      binaryFormatMajorVersion: 2,
      binaryFormatMinorVersion: 0,
      buildEpoch: new Date('2026-11-18T12:00:00Z'),
      databaseType: 'Test-Types',
      ipVersion: 6,
      recordSize,
      languages: ['en'],
      description: { en: 'Test-Types test database' },
    });
  });

  it('writes record values above 24 bits, long pointers and the largest length form (28 and 32 bits)', () => {
    // 16.8 MB of string puts the second record beyond 2^24 bytes, which needs the 28-bit nibble.
    const huge = { filler: 'x'.repeat(16_800_000), name: 'first copy' };
    const after = { name: 'first copy', other: 'second' };
    for (const recordSize of [28, 32] as const) {
      const reader = new Reader<Response>(
        buildMmdb({
          databaseType: 'Test-Large',
          buildEpoch: epoch('2026-11-18'),
          recordSize,
          networks: [
            { cidr: '10.0.0.0/8', data: huge },
            { cidr: '11.0.0.0/8', data: after },
          ],
        }),
      );
      expect(reader.get('11.1.1.1')).toEqual(after);
      expect((reader.get('10.1.1.1') as typeof huge).filler).toHaveLength(16_800_000);
    }
    expect(() =>
      buildMmdb({
        databaseType: 'Test-Large',
        buildEpoch: epoch('2026-11-18'),
        recordSize: 24,
        networks: [
          { cidr: '10.0.0.0/8', data: huge },
          { cidr: '11.0.0.0/8', data: after },
        ],
      }),
    ).toThrow(/does not fit 24 bits/);
  });

  it('points back to strings first written beyond the one- and two-byte pointer ranges', () => {
    const networks: MmdbNetwork[] = [
      { cidr: '1.0.0.0/24', data: { pad: 'p'.repeat(3000) } },
      { cidr: '2.0.0.0/24', data: { near: 'first written after 3 kB' } },
      { cidr: '3.0.0.0/24', data: { pad: 'q'.repeat(600_000) } },
      { cidr: '4.0.0.0/24', data: { far: 'first written after 600 kB' } },
      { cidr: '5.0.0.0/24', data: { near: 'first written after 3 kB', far: 'first written after 600 kB' } },
    ];
    const file = buildMmdb({ databaseType: 'Test-Pointers', buildEpoch: 0, networks });
    const reader = new Reader<Response>(file);
    for (const { cidr, data } of networks) expect(reader.get(cidr.replace('/24', ''))).toEqual(data);
    for (const text of ['first written after 3 kB', 'first written after 600 kB']) {
      expect(file.indexOf(text)).toBe(file.lastIndexOf(text));
    }
  });

  it('places IPv4 networks under ::/96 so IPv4 and IPv6 lookups both find them, most specific first', () => {
    const wide = { name: 'wide' };
    const narrow = { name: 'narrow' };
    const v6 = { name: 'v6' };
    const reader = new Reader<Response>(
      buildMmdb({
        databaseType: 'Test-Tree',
        buildEpoch: 0,
        // Given in the "wrong" order: the narrower network still wins inside the wider one.
        networks: [
          { cidr: '198.51.100.128/25', data: narrow },
          { cidr: '198.51.100.0/24', data: wide },
          { cidr: '2001:db8::/32', data: v6 },
        ],
      }),
    );
    expect(reader.getWithPrefixLength('198.51.100.200')).toEqual([narrow, 25]);
    expect(reader.getWithPrefixLength('198.51.100.1')).toEqual([wide, 25]);
    expect(reader.getWithPrefixLength('::c633:6401')).toEqual([wide, 121]);
    expect(reader.getWithPrefixLength('2001:db8:1::1')).toEqual([v6, 32]);
    expect(reader.get('198.51.101.1')).toBeNull();
    expect(reader.get('2001:db9::1')).toBeNull();
  });

  it('writes IPv4-only trees and refuses IPv6 networks or host bits in them', () => {
    const data = { name: 'v4' };
    const reader = new Reader<Response>(
      buildMmdb({ databaseType: 'Test-V4', buildEpoch: 0, ipVersion: 4, networks: [{ cidr: '192.0.2.0/24', data }] }),
    );
    expect(reader.metadata.ipVersion).toBe(4);
    expect(reader.getWithPrefixLength('192.0.2.9')).toEqual([data, 24]);
    expect(() => buildMmdb({ databaseType: 'x', buildEpoch: 0, ipVersion: 4, networks: [{ cidr: '::/64', data }] })).toThrow(
      /does not fit an IPv4 database/,
    );
    expect(() => buildMmdb({ databaseType: 'x', buildEpoch: 0, networks: [{ cidr: '192.0.2.1/24', data }] })).toThrow(
      /host bits/,
    );
  });

  it('writes files node-maxmind opens', async () => {
    const path = join(dir, 'written.mmdb');
    await writeMmdb(path, { databaseType: 'Test-File', buildEpoch: 0, networks: [{ cidr: '1.1.1.0/24', data: { a: 1 } }] });
    const reader = await open(path);
    expect(reader.get('1.1.1.1')).toEqual({ a: 1 });
  });
});

describe('MaxMindSource', () => {
  let cityPath: string;
  let asnPath: string;

  beforeEach(async () => {
    cityPath = join(dir, 'GeoLite2-City.mmdb');
    asnPath = join(dir, 'GeoLite2-ASN.mmdb');
    await writeMmdb(cityPath, { ...CITY, buildEpoch: epoch('2026-11-17') });
    await writeMmdb(asnPath, asnDatabase('2026-11-18', 'Andrews & Arnold Ltd'));
  });

  it('answers IPv4 addresses with geo and ASN, the prefix being the network of the matched record', async () => {
    const source = await openSource({ cityDb: cityPath, asnDb: asnPath });
    expect(source.lookup('81.2.69.160')).toEqual({
      status: 'ok',
      database: 'GeoLite2-City 2026-11-17, GeoLite2-ASN 2026-11-18',
      data: {
        geo: {
          country: 'GB',
          countryName: 'United Kingdom',
          city: 'London',
          latitude: 51.5142,
          longitude: -0.0931,
          accuracyRadius: 20,
          timezone: 'Europe/London',
        },
        asn: {
          number: 64500,
          numbers: [64500],
          name: 'More Specific Ltd',
          prefix: '81.2.69.0/24',
          country: null,
          registry: null,
          allocated: null,
          source: 'maxmind',
        },
      },
    });
    // MaxMind stores 81.2.0.0/16 around the /24 as the halves left over, and reports those.
    const outside = source.lookup('81.2.200.1');
    expect(outside).toMatchObject({ status: 'ok', data: { geo: null, asn: { number: 20712, prefix: '81.2.128.0/17' } } });
  });

  it('answers IPv6 addresses with a canonical prefix', async () => {
    const source = await openSource({ cityDb: cityPath, asnDb: asnPath });
    const outcome = source.lookup('2a02:d8:0:1::5');
    expect(outcome).toMatchObject({
      status: 'ok',
      data: {
        geo: { country: 'SE', city: 'Stockholm', timezone: 'Europe/Stockholm' },
        asn: { number: 8473, name: 'Bahnhof AB', prefix: '2a02:d8::/32' },
      },
    });
  });

  it('falls back to the registered country when the record has no country', async () => {
    const source = await openSource({ cityDb: cityPath });
    expect(source.lookup('5.5.5.5')).toEqual({
      status: 'ok',
      database: 'GeoLite2-City 2026-11-17',
      data: {
        geo: {
          country: 'DE',
          countryName: 'Germany',
          city: null,
          latitude: null,
          longitude: null,
          accuracyRadius: null,
          timezone: null,
        },
        asn: null,
      },
    });
  });

  it('reports not_found for an address in no network of the loaded databases', async () => {
    const source = await openSource({ cityDb: cityPath, asnDb: asnPath });
    expect(source.lookup('9.9.9.9')).toEqual({
      status: 'not_found',
      data: { geo: null, asn: null },
      database: 'GeoLite2-City 2026-11-17, GeoLite2-ASN 2026-11-18',
    });
    expect(source.lookup('2600::1')).toMatchObject({ status: 'not_found' });
  });

  it('keeps answering from the City database when the ASN path does not exist, and says why in availability', async () => {
    const { logger, warnings } = captureLogs();
    const missing = join(dir, 'missing-ASN.mmdb');
    const source = await openSource({ cityDb: cityPath, asnDb: missing, logger });
    expect(source.lookup('81.2.69.160')).toMatchObject({ status: 'ok', data: { geo: { city: 'London' }, asn: null } });
    expect(source.version()).toBe('GeoLite2-City 2026-11-17');
    const availability = source.availability();
    expect(availability).toMatchObject({
      status: 'ready',
      databases: [{ type: 'GeoLite2-City', path: cityPath, buildDate: '2026-11-17' }],
    });
    expect(availability.reason).toContain(missing);
    expect(warnings().some((line) => line.path === missing)).toBe(true);
  });

  it('treats a file that is not a MaxMind DB as unavailable without affecting the other database', async () => {
    const garbage = join(dir, 'garbage.mmdb');
    await writeFile(garbage, 'this is not a MaxMind database at all');
    const source = await openSource({ cityDb: garbage, asnDb: asnPath, logger: captureLogs().logger });
    expect(source.lookup('81.2.69.160')).toMatchObject({ status: 'ok', data: { geo: null, asn: { number: 64500 } } });
    expect(source.availability().reason).toContain(garbage);
  });

  it('refuses a file whose data section is missing although its tree and metadata are intact', async () => {
    const truncated = join(dir, 'truncated.mmdb');
    const full = buildMmdb(asnDatabase('2026-11-18', 'x'));
    const tree = full.subarray(0, new Reader(full).metadata.searchTreeSize);
    const metadata = full.subarray(full.lastIndexOf(Buffer.from('MaxMind.com')) - 3);
    await writeFile(truncated, Buffer.concat([tree, metadata]));
    const source = await openSource({ asnDb: truncated, logger: captureLogs().logger });
    expect(source.availability()).toMatchObject({ status: 'unavailable', databases: [] });
    expect(source.availability().reason).toMatch(/truncated/);
  });

  it('is unavailable when no database is configured', async () => {
    const source = await openSource({});
    expect(source.lookup('81.2.69.160')).toEqual({
      status: 'unavailable',
      reason: 'no MaxMind database configured (MAXMIND_CITY_DB, MAXMIND_ASN_DB)',
    });
    expect(source.version()).toBeNull();
    expect(source.availability()).toMatchObject({ status: 'unavailable', databases: [] });
  });

  it('is unavailable, naming both paths, when neither configured database loads', async () => {
    const city = join(dir, 'nope-City.mmdb');
    const asn = join(dir, 'nope-ASN.mmdb');
    const source = await openSource({ cityDb: city, asnDb: asn, logger: captureLogs().logger });
    const outcome = source.lookup('81.2.69.160');
    expect(outcome.status).toBe('unavailable');
    expect(outcome).toHaveProperty('reason', expect.stringContaining(city));
    expect(outcome).toHaveProperty('reason', expect.stringContaining(asn));
  });

  it('does not look IPv6 addresses up in an IPv4-only database', async () => {
    const v4Only = join(dir, 'v4.mmdb');
    await writeMmdb(v4Only, {
      databaseType: 'Test-City-V4',
      buildEpoch: epoch('2026-01-01'),
      ipVersion: 4,
      networks: [{ cidr: '0.0.0.0/1', data: cityRecord('US', 'United States', 'Somewhere', 1, 2, 'UTC') }],
    });
    const source = await openSource({ cityDb: v4Only });
    expect(source.lookup('1.2.3.4')).toMatchObject({ status: 'ok', data: { geo: { country: 'US' } } });
    expect(source.lookup('::1.2.3.4')).toMatchObject({ status: 'not_found' });
  });

  it('answers 8.8.8.8 with US from the real GeoLite2 City database of geoip-database', async () => {
    const source = await openSource({ cityDb: geoipDatabase.city });
    const outcome = source.lookup('8.8.8.8');
    expect(outcome).toMatchObject({ status: 'ok', data: { geo: { country: 'US', countryName: 'United States' }, asn: null } });
    expect(source.version()).toMatch(/^GeoLite2-City 2019-\d\d-\d\d$/);
    expect(source.availability().databases[0]?.buildDate).toMatch(/^2019-/);
    expect(source.lookup('2001:4860:4860::8888')).toMatchObject({ status: 'ok', data: { geo: { country: 'US' } } });
  });

  it('reads a Country database in the City slot', async () => {
    const source = await openSource({ cityDb: geoipDatabase.country });
    expect(source.lookup('8.8.8.8')).toMatchObject({
      status: 'ok',
      data: { geo: { country: 'US', city: null, latitude: null } },
    });
    expect(source.version()).toMatch(/^GeoLite2-Country 2019-/);
  });

  describe('watching for updates', () => {
    it('picks up a database renamed over the old one, without re-opening', async () => {
      const { logger } = captureLogs();
      const source = await openSource({ cityDb: cityPath, asnDb: asnPath, logger, watch: true });
      expect(source.lookup('81.2.1.1')).toMatchObject({ data: { asn: { name: 'Andrews & Arnold Ltd' } } });

      await replaceFile(asnPath, buildMmdb(asnDatabase('2026-11-21', 'Andrews & Arnold Limited')));
      await until(() => source.version() === 'GeoLite2-City 2026-11-17, GeoLite2-ASN 2026-11-21');
      expect(source.lookup('81.2.1.1')).toMatchObject({
        database: 'GeoLite2-City 2026-11-17, GeoLite2-ASN 2026-11-21',
        data: { geo: null, asn: { name: 'Andrews & Arnold Limited' } },
      });
      expect(source.availability().databases.map((database) => database.buildDate)).toEqual(['2026-11-17', '2026-11-21']);
    });

    it.each([
      ['garbage', () => Buffer.from('not a database')],
      ['a file cut short', () => buildMmdb(asnDatabase('2026-11-21', 'new')).subarray(0, 50)],
    ])('keeps the database in use when %s replaces it, and says so in availability', async (_kind, contents) => {
      const { logger, warnings } = captureLogs();
      const source = await openSource({ asnDb: asnPath, logger, watch: true });
      await replaceFile(asnPath, contents());
      await until(() => warnings().some((line) => line.msg.includes('keeping the one in use')));
      expect(source.version()).toBe('GeoLite2-ASN 2026-11-18');
      expect(source.lookup('81.2.1.1')).toMatchObject({ status: 'ok', data: { asn: { name: 'Andrews & Arnold Ltd' } } });
      const availability = source.availability();
      expect(availability).toMatchObject({ status: 'ready', databases: [{ type: 'GeoLite2-ASN', buildDate: '2026-11-18' }] });
      expect(availability.reason).toContain(asnPath);
      expect(availability.reason).toMatch(/new file cannot be loaded \(.+\); keeping the previous build, GeoLite2-ASN 2026-11-18$/);
    });

    it('clears the reason a failed reload gave once a later file loads', async () => {
      const { logger, warnings } = captureLogs();
      const source = await openSource({ asnDb: asnPath, logger, watch: true });
      await replaceFile(asnPath, Buffer.from('not a database'));
      await until(() => warnings().some((line) => line.msg.includes('keeping the one in use')));
      expect(source.availability().reason).toMatch(/cannot be loaded/);

      await replaceFile(asnPath, buildMmdb(asnDatabase('2026-11-21', 'Andrews & Arnold Limited')));
      await until(() => source.version() === 'GeoLite2-ASN 2026-11-21');
      expect(source.availability()).toEqual({
        status: 'ready',
        databases: [{ type: 'GeoLite2-ASN', path: asnPath, buildDate: '2026-11-21' }],
      });
    });

    it('loads a database that appears after start-up', async () => {
      const later = join(dir, 'later-ASN.mmdb');
      const source = await openSource({ asnDb: later, logger: captureLogs().logger, watch: true });
      expect(source.lookup('81.2.1.1')).toMatchObject({ status: 'unavailable' });
      await replaceFile(later, buildMmdb(asnDatabase('2026-11-21', 'Arrived Ltd')));
      await until(() => source.version() !== null);
      expect(source.lookup('81.2.1.1')).toMatchObject({ status: 'ok', data: { asn: { name: 'Arrived Ltd' } } });
      expect(source.availability()).toEqual({
        status: 'ready',
        databases: [{ type: 'GeoLite2-ASN', path: later, buildDate: '2026-11-21' }],
      });
    });

    it('stops watching on close', async () => {
      const source = await openSource({ asnDb: asnPath, watch: true });
      await source.close();
      await replaceFile(asnPath, buildMmdb(asnDatabase('2026-11-21', 'new')));
      // Twice the debounce: long enough for a reload that should not happen to have happened.
      await new Promise((resolve) => setTimeout(resolve, 400));
      expect(source.version()).toBe('GeoLite2-ASN 2026-11-18');
    });
  });
});
