import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import ipaddr from 'ipaddr.js';
import { LRUCache } from 'lru-cache';
import { Reader, type AsnResponse, type CityResponse, type Response } from 'maxmind';
import { errorMessage } from '../errors/message.js';
import { ipv4Network, ipv4Text, ipv4Value } from '../ip/ipv4.js';
import type { Asn, Geo, MaxMindData, SourceOutcome } from '../record/model.js';

export interface MaxMindOptions {
  cityDb?: string;
  asnDb?: string;
  logger?: FastifyBaseLogger;
  watch?: boolean;
}

type Slot = 'city' | 'asn';

const SLOTS: Slot[] = ['city', 'asn'];
const LABELS: Record<Slot, string> = { city: 'City', asn: 'ASN' };
/** geoipupdate and friends touch the directory several times per replacement; one reload is enough. */
const RELOAD_DEBOUNCE_MS = 200;
const DECODE_CACHE_ENTRIES = 10_000;
const DATA_SECTION_SEPARATOR_SIZE = 16;

interface LoadedDatabase {
  reader: Reader<Response>;
  type: string;
  path: string;
  buildDate: string;
}

type Databases = Record<Slot, LoadedDatabase | null>;

/** Everything a lookup reads, replaced as one reference so it never mixes an old and a new database. */
interface Snapshot extends Databases {
  version: string | null;
}

/**
 * Reads the whole file before building a reader, then checks what the reader's constructor does not:
 * that the search tree the metadata describes is followed by the data section separator, so a file
 * corrupted or spliced in the middle is refused instead of answering garbage.
 */
async function openDatabase(path: string): Promise<LoadedDatabase> {
  const buffer = await readFile(path);
  const reader = new Reader<Response>(buffer, { cache: new LRUCache<number, object>({ max: DECODE_CACHE_ENTRIES }) });
  const { metadata } = reader;
  if (metadata.binaryFormatMajorVersion !== 2) throw new Error(`unsupported format ${metadata.binaryFormatMajorVersion}`);
  if (metadata.ipVersion !== 4 && metadata.ipVersion !== 6) throw new Error(`invalid ip_version ${metadata.ipVersion}`);
  const separator = buffer.subarray(metadata.searchTreeSize, metadata.searchTreeSize + DATA_SECTION_SEPARATOR_SIZE);
  if (separator.length !== DATA_SECTION_SEPARATOR_SIZE || separator.some((byte) => byte !== 0)) {
    throw new Error('search tree and data section do not match the metadata (truncated or corrupt file)');
  }
  const buildEpoch = metadata.buildEpoch.getTime();
  if (!Number.isFinite(buildEpoch)) throw new Error('invalid build_epoch');
  return {
    reader,
    type: typeof metadata.databaseType === 'string' ? metadata.databaseType : 'unknown',
    path,
    buildDate: new Date(buildEpoch).toISOString().slice(0, 10),
  };
}

function describe(database: LoadedDatabase): string {
  return `${database.type} ${database.buildDate}`;
}

function snapshotOf({ city, asn }: Databases): Snapshot {
  const loaded = [city, asn].filter((database) => database !== null);
  return { city, asn, version: loaded.length === 0 ? null : loaded.map(describe).join(', ') };
}

/** An IPv6 lookup in an IPv4-only database would walk the tree with the wrong bits and answer nonsense. */
function fits(database: LoadedDatabase, ip: string): boolean {
  return database.reader.metadata.ipVersion === 6 || !ip.includes(':');
}

/** Whatever the file, the City slot is read as City (or Country) records; missing fields become null. */
function toGeo(database: LoadedDatabase, ip: string): Geo | null {
  const record = database.reader.get(ip) as CityResponse | null;
  if (!record) return null;
  const country = record.country ?? record.registered_country;
  const geo: Geo = {
    country: country?.iso_code ?? null,
    countryName: country?.names?.en ?? null,
    city: record.city?.names?.en ?? null,
    latitude: record.location?.latitude ?? null,
    longitude: record.location?.longitude ?? null,
    accuracyRadius: record.location?.accuracy_radius ?? null,
    timezone: record.location?.time_zone ?? null,
  };
  return Object.values(geo).every((value) => value === null) ? null : geo;
}

/**
 * The network of the matched record; for IPv4 node-maxmind counts the prefix from the IPv4 subtree. IPv4
 * is masked as a number because it is most of the traffic and ipaddr.js would double the cost of a lookup.
 */
function networkCidr(ip: string, prefixLength: number): string {
  if (ip.includes(':')) {
    return `${ipaddr.IPv6.networkAddressFromCIDR(`${ip}/${prefixLength}`).toRFC5952String()}/${prefixLength}`;
  }
  const value = ipv4Value(ip);
  if (value === null) throw new Error(`${ip} is not an IPv4 address in dotted-decimal form`);
  return `${ipv4Text(ipv4Network(value, prefixLength))}/${prefixLength}`;
}

function toAsn(database: LoadedDatabase, ip: string): Asn | null {
  const [record, prefixLength] = database.reader.getWithPrefixLength(ip) as [AsnResponse | null, number];
  if (!record || typeof record.autonomous_system_number !== 'number') return null;
  const number = record.autonomous_system_number;
  return {
    number,
    numbers: [number],
    name: record.autonomous_system_organization ?? null,
    prefix: networkCidr(ip, prefixLength),
    country: null,
    registry: null,
    allocated: null,
    source: 'maxmind',
  };
}

/**
 * Local GeoIP2/GeoLite2 City (or Country) and ASN databases, answered in-process.
 *
 * Updates are watched here rather than with node-maxmind's `watchForUpdates`, which polls the file with
 * fs.watchFile and calls `reader.load()` on the live reader. A file that does not parse (one still being
 * copied in place has no metadata yet) rejects a promise nobody handles, which ends the process; one
 * whose tree is cut short but whose metadata survived is loaded without complaint, and the live reader
 * then throws or answers garbage (both seen with node-maxmind 5.0.7). Here a new file is read and checked
 * in full into a separate reader, and only then does one reference swap make it visible.
 */
export class MaxMindSource {
  private snapshot: Snapshot = snapshotOf({ city: null, asn: null });
  private readonly paths: Record<Slot, string | undefined>;
  /** Why a configured database is not loaded, or not its newest file, for /readyz; cleared when it loads. */
  private readonly problems = new Map<Slot, string>();
  private readonly watchers: FSWatcher[] = [];
  private readonly timers = new Map<Slot, NodeJS.Timeout>();
  /** Only the newest reload of a slot may swap, should an older and slower read finish after it. */
  private readonly generations: Record<Slot, number> = { city: 0, asn: 0 };
  private readonly reloads = new Set<Promise<void>>();
  private closed = false;

  private constructor(
    options: MaxMindOptions,
    private readonly logger: FastifyBaseLogger | undefined,
  ) {
    this.paths = { city: options.cityDb, asn: options.asnDb };
  }

  static async open(options: MaxMindOptions): Promise<MaxMindSource> {
    const source = new MaxMindSource(options, options.logger);
    const [city, asn] = await Promise.all([source.initialLoad('city'), source.initialLoad('asn')]);
    source.snapshot = snapshotOf({ city, asn });
    if (options.watch ?? true) source.startWatching();
    return source;
  }

  /**
   * `ip` must be a canonical address (see parseAddress): this runs for every address of a request, so it
   * does not validate it again.
   */
  lookup(ip: string): SourceOutcome<MaxMindData> {
    const { city, asn, version } = this.snapshot;
    if (version === null) return { status: 'unavailable', reason: this.unavailableReason() };
    try {
      const geo = city && fits(city, ip) ? toGeo(city, ip) : null;
      const asnData = asn && fits(asn, ip) ? toAsn(asn, ip) : null;
      const status = geo || asnData ? 'ok' : 'not_found';
      return { status, data: { geo, asn: asnData }, database: version };
    } catch (error) {
      // A database that passed the checks on load can still hold a corrupt record somewhere.
      return { status: 'error', error: `MaxMind lookup failed: ${errorMessage(error)}` };
    }
  }

  version(): string | null {
    return this.snapshot.version;
  }

  availability(): {
    status: 'ready' | 'unavailable';
    reason?: string;
    databases: Array<{ type: string; path: string; buildDate: string }>;
  } {
    const { city, asn, version } = this.snapshot;
    const databases = [city, asn]
      .filter((database) => database !== null)
      .map(({ type, path, buildDate }) => ({ type, path, buildDate }));
    if (version === null) return { status: 'unavailable', reason: this.unavailableReason(), databases };
    const problems = [...this.problems.values()];
    return problems.length === 0 ? { status: 'ready', databases } : { status: 'ready', reason: problems.join('; '), databases };
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const watcher of this.watchers) watcher.close();
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    await Promise.all(this.reloads);
  }

  private unavailableReason(): string {
    if (this.problems.size > 0) return [...this.problems.values()].join('; ');
    return 'no MaxMind database configured (MAXMIND_CITY_DB, MAXMIND_ASN_DB)';
  }

  private async initialLoad(slot: Slot): Promise<LoadedDatabase | null> {
    const path = this.paths[slot];
    if (path === undefined) return null;
    try {
      const database = await openDatabase(path);
      this.logger?.info({ path, database: describe(database) }, `loaded MaxMind ${LABELS[slot]} database`);
      return database;
    } catch (error) {
      this.recordProblem(slot, path, error);
      return null;
    }
  }

  private recordProblem(slot: Slot, path: string, error: unknown): void {
    const problem = `${LABELS[slot]} database ${path}: ${errorMessage(error)}`;
    this.problems.set(slot, problem);
    this.logger?.warn({ path }, `MaxMind ${problem}`);
  }

  /**
   * Watches the directory, not the file: geoipupdate renames a new file over the old one, which a watch on
   * the old file's inode would never report. This also picks up a database that did not exist at boot.
   */
  private startWatching(): void {
    for (const slot of SLOTS) {
      const path = this.paths[slot];
      if (path === undefined) continue;
      const name = basename(path);
      try {
        const watcher = watch(dirname(path), { persistent: false }, (_event, filename) => {
          if (filename === null || filename === name) this.scheduleReload(slot);
        });
        watcher.on('error', (error) => {
          this.logger?.warn({ err: error, path }, `stopped watching the MaxMind ${LABELS[slot]} database for updates`);
        });
        this.watchers.push(watcher);
      } catch (error) {
        this.logger?.warn({ err: error, path }, `cannot watch the MaxMind ${LABELS[slot]} database for updates`);
      }
    }
  }

  private scheduleReload(slot: Slot): void {
    if (this.closed) return;
    clearTimeout(this.timers.get(slot));
    const timer = setTimeout(() => {
      this.timers.delete(slot);
      const reload = this.reload(slot);
      this.reloads.add(reload);
      void reload.finally(() => this.reloads.delete(reload));
    }, RELOAD_DEBOUNCE_MS);
    timer.unref();
    this.timers.set(slot, timer);
  }

  private async reload(slot: Slot): Promise<void> {
    const path = this.paths[slot];
    if (path === undefined) return;
    const generation = ++this.generations[slot];
    let database: LoadedDatabase;
    try {
      database = await openDatabase(path);
    } catch (error) {
      if (this.closed || generation !== this.generations[slot]) return;
      const inUse = this.snapshot[slot];
      if (inUse === null) {
        this.recordProblem(slot, path, error);
      } else {
        // Still ready, but an operator who replaced the file must see that the new build is not the one
        // answering.
        this.problems.set(
          slot,
          `${LABELS[slot]} database ${path} changed but the new file cannot be loaded (${errorMessage(error)}); ` +
            `keeping the previous build, ${describe(inUse)}`,
        );
        this.logger?.warn(
          { path, err: error, database: describe(inUse) },
          `MaxMind ${LABELS[slot]} database changed but cannot be loaded; keeping the one in use`,
        );
      }
      return;
    }
    if (this.closed || generation !== this.generations[slot]) return;
    this.snapshot = snapshotOf({ ...this.snapshot, [slot]: database });
    this.problems.delete(slot);
    this.logger?.info({ path, database: describe(database) }, `loaded updated MaxMind ${LABELS[slot]} database`);
  }
}
