import type { RecordUpdate } from '../src/db/record-store.js';
import type { Asn, DShield, Geo, GreyNoise, MaxMindData, StoredSources } from '../src/record/model.js';

const CITIES: Array<Omit<Geo, 'accuracyRadius'>> = [
  { country: 'US', countryName: 'United States', city: 'Ashburn', latitude: 39.0437, longitude: -77.4875, timezone: 'America/New_York' },
  { country: 'DE', countryName: 'Germany', city: 'Frankfurt am Main', latitude: 50.1188, longitude: 8.6843, timezone: 'Europe/Berlin' },
  { country: 'NL', countryName: 'Netherlands', city: 'Amsterdam', latitude: 52.3759, longitude: 4.8975, timezone: 'Europe/Amsterdam' },
  { country: 'CN', countryName: 'China', city: 'Shanghai', latitude: 31.2222, longitude: 121.4581, timezone: 'Asia/Shanghai' },
  { country: 'BR', countryName: 'Brazil', city: 'São Paulo', latitude: -23.5335, longitude: -46.6359, timezone: 'America/Sao_Paulo' },
];
const REGISTRIES = ['arin', 'ripencc', 'apnic', 'lacnic', 'afrinic'];
const FEEDS = ['ciarmy', 'blocklistde22', 'emergingthreats', 'feodotracker', 'tor_exit'];

/**
 * What one request learns about an address when every source answers: the shapes and sizes the sources
 * produce (a City hit without ASN, a Cymru row, a GreyNoise scanner verdict, DShield counts and feeds).
 */
export function fullUpdates(ips: readonly string[], fetchedAt: Date): RecordUpdate[] {
  const at = fetchedAt.toISOString();
  return ips.map((ip, index) => {
    const [a = 0, b = 0, c = 0] = ip.split('.').map(Number);
    const place = CITIES[index % CITIES.length]!;
    const maxmind: MaxMindData = { geo: { ...place, accuracyRadius: 20 + (index % 200) }, asn: null };
    const cymru: Asn = {
      number: 1000 + a * 256 + b,
      numbers: index % 17 === 0 ? [1000 + a * 256 + b, 3356] : [1000 + a * 256 + b],
      name: `EXAMPLE-NET-${a}-${b}, ${place.country}`,
      prefix: `${a}.${b}.${c}.0/24`,
      country: place.country,
      registry: REGISTRIES[a % REGISTRIES.length] ?? 'arin',
      allocated: `20${String(a % 24).padStart(2, '0')}-0${1 + (b % 9)}-1${c % 10}`,
      source: 'cymru',
    };
    const scanner = index % 3 === 0;
    const greynoise: GreyNoise = {
      noise: scanner,
      riot: index % 11 === 0,
      classification: scanner ? (index % 2 === 0 ? 'malicious' : 'unknown') : null,
      name: scanner ? `Scanner ${a}` : null,
      link: scanner ? `https://viz.greynoise.io/ip/${ip}` : null,
      lastSeen: scanner ? '2026-11-20' : null,
    };
    const dshield: DShield = {
      attacks: 1 + (index % 500),
      reports: 10 + (index % 5000),
      firstSeen: '2026-01-14',
      lastSeen: '2026-11-21',
      threatFeeds: FEEDS.slice(0, index % (FEEDS.length + 1)),
      abuseContact: `abuse@as${cymru.number}.example.net`,
    };
    const sources: StoredSources = {
      maxmind: { status: 'ok', fetchedAt: at, data: maxmind, database: 'GeoLite2-City 2026-11-17' },
      cymru: { status: 'ok', fetchedAt: at, data: cymru },
      greynoise: { status: scanner ? 'ok' : 'not_found', fetchedAt: at, data: greynoise },
      dshield: { status: 'ok', fetchedAt: at, data: dshield },
    };
    return { ip, sources, lookups: 1 };
  });
}
