import type { RecordSource } from '../cache/tiered-loader.js';
import type { DatabaseHandle } from '../db/client.js';
import type { Enricher } from '../enrich/cascade.js';
import type { Freshness, SourceSet } from '../enrich/sources.js';
import { Prisma } from '../generated/prisma/client.js';

/** Records read per statement while looking for stale ones. */
const PAGE = 5000;

export interface StaleSearch {
  database: Pick<DatabaseHandle, 'prisma'>;
  records: RecordSource;
  enricher: Enricher;
  sources: SourceSet;
  freshness: Freshness;
  now: number;
}

/**
 * The condition a stale record certainly meets, so that the database hands over few records that are
 * not: an answer older than its source's freshness, or missing where the source could give one. Sources
 * that cannot answer now (switched off, not configured) make nothing stale. It only narrows the search;
 * the cascade's own plan (Enricher.recordsDue) decides.
 */
function staleCondition({ sources, freshness, now }: StaleSearch): Prisma.Sql {
  const cutoff = (ttl: number) => new Date(now - ttl);
  const terms: Prisma.Sql[] = [
    Prisma.sql`cymru_fetched_at < ${cutoff(freshness.cymru)}`,
    Prisma.sql`(cymru_fetched_at IS NULL AND jsonb_typeof(maxmind -> 'asn') IS DISTINCT FROM 'object')`,
  ];
  if (sources.maxmind.availability().status === 'ready') {
    terms.push(Prisma.sql`maxmind_database IS DISTINCT FROM ${sources.maxmind.version()}`);
  }
  if (sources.greynoise.availability().status === 'ready') {
    // GreyNoise's community API has no IPv6, so an IPv6 record never has a GreyNoise answer to miss.
    terms.push(Prisma.sql`greynoise_fetched_at < ${cutoff(freshness.greynoise)}`);
    terms.push(Prisma.sql`(greynoise_fetched_at IS NULL AND strpos(ip, ':') = 0)`);
  }
  if (sources.dshield.availability().status === 'ready') {
    terms.push(Prisma.sql`(dshield_fetched_at IS NULL OR dshield_fetched_at < ${cutoff(freshness.dshield)})`);
  }
  return Prisma.join(terms, ' OR ');
}

/**
 * The stored records with any stale source (one a request would fetch again now), most recently seen
 * first, at most `max` of them. Read a page at a time by (last_seen, ip), which no index serves: the table
 * is scanned once per page, which a refresh every few hours affords, and an index on last_seen would
 * cost every lookup, since a lookup moves it.
 */
export async function staleAddresses(search: StaleSearch, max: number): Promise<string[]> {
  const { database, records, enricher } = search;
  const condition = staleCondition(search);
  const stale: string[] = [];
  let after: { lastSeen: Date; ip: string } | undefined;
  while (stale.length < max) {
    const keyset = after ? Prisma.sql`AND (last_seen, ip) < (${after.lastSeen}, ${after.ip})` : Prisma.empty;
    const page = await database.prisma.$queryRaw<Array<{ ip: string; last_seen: Date }>>`
      SELECT ip, last_seen FROM ip_record WHERE (${condition}) ${keyset}
      ORDER BY last_seen DESC, ip DESC LIMIT ${PAGE}`;
    const loaded = await records.load(page.map((row) => row.ip));
    const due = new Set(enricher.recordsDue(loaded.values()).map((record) => record.ip));
    for (const { ip } of page) if (due.has(ip) && stale.length < max) stale.push(ip);
    const last = page.at(-1);
    if (!last || page.length < PAGE) break;
    after = { lastSeen: last.last_seen, ip: last.ip };
  }
  return stale;
}
