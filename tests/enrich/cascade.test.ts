import { describe, expect, it, vi } from 'vitest';
import { MemoryTier } from '../../src/cache/memory-tier.js';
import { TieredLoader, type RecordSource } from '../../src/cache/tiered-loader.js';
import { ManualClock } from '../support/manual-clock.js';
import type { RecordUpdate } from '../../src/db/record-store.js';
import { Enricher, type RecordWriter } from '../../src/enrich/cascade.js';
import type {
  BulkAsnSource,
  InProcessSource,
  LookupOptions,
  PerAddressSource,
  SourceAvailability,
  BulkSourceHealth,
} from '../../src/enrich/sources.js';
import type { Asn, IpRecord, MaxMindData, SourceOutcome, StoredRecord } from '../../src/record/model.js';

const DAY = 86_400_000;

const asn = (number: number): Asn => ({
  number,
  numbers: [number],
  name: `AS${number}`,
  prefix: null,
  country: null,
  registry: null,
  allocated: null,
  source: 'cymru',
});

/** L2 in memory, merged per source the way the upsert statement merges. */
class MemoryStore implements RecordSource, RecordWriter {
  readonly records = new Map<string, StoredRecord>();
  readonly saves: RecordUpdate[][] = [];
  loads = 0;

  load(ips: readonly string[]): Promise<Map<string, StoredRecord>> {
    this.loads += 1;
    return Promise.resolve(new Map(ips.flatMap((ip) => (this.records.has(ip) ? [[ip, this.records.get(ip)!] as const] : []))));
  }

  save(updates: readonly RecordUpdate[], at: Date): Promise<void> {
    this.saves.push([...updates]);
    for (const update of updates) {
      const previous = this.records.get(update.ip);
      const empty = { maxmind: null, cymru: null, greynoise: null, dshield: null };
      this.records.set(update.ip, {
        ip: update.ip,
        sources: { ...(previous?.sources ?? empty), ...update.sources },
        updatedAt: at.toISOString(),
      });
    }
    return Promise.resolve();
  }
}

class FakeMaxMind implements InProcessSource {
  readonly asked: string[] = [];
  constructor(private readonly asns: Record<string, number> = {}) {}

  lookup(ip: string): SourceOutcome<MaxMindData> {
    this.asked.push(ip);
    const number = this.asns[ip];
    const data = { geo: null, asn: number === undefined ? null : { ...asn(number), source: 'maxmind' as const } };
    return { status: number === undefined ? 'not_found' : 'ok', data, database: 'Test-ASN 2026-11-30' };
  }

  version() {
    return 'Test-ASN 2026-11-30';
  }

  availability(): SourceAvailability {
    return { status: 'ready' };
  }
}

/** Answers AS64500 for every address, except those it is told to fail; remembers every batch asked. */
class FakeCymru implements BulkAsnSource {
  readonly batches: string[][] = [];
  /** What a batch waits for before it answers, e.g. for the test to let it go. */
  answering: (ips: readonly string[]) => Promise<void> = () => Promise.resolve();
  constructor(private readonly failing: ReadonlySet<string> = new Set()) {}

  async lookupStreaming(ips: readonly string[], onBatch: (results: Map<string, SourceOutcome<Asn>>) => void | Promise<void>) {
    this.batches.push([...ips]);
    await this.answering(ips);
    const failed = ips.some((ip) => this.failing.has(ip));
    await onBatch(
      new Map(
        ips.map((ip): [string, SourceOutcome<Asn>] =>
          failed ? [ip, { status: 'error', error: 'bulk query failed: reset' }] : [ip, { status: 'ok', data: asn(64500) }],
        ),
      ),
    );
  }

  health(): BulkSourceHealth {
    return { status: 'ready' };
  }

  stats() {
    return { queries: this.batches.length, failures: 0 };
  }

  close(): void {}
}

class FakeHttpSource implements PerAddressSource<never> {
  readonly asked: string[] = [];
  state: SourceAvailability = { status: 'ready' };
  constructor(private readonly answer: (ip: string) => SourceOutcome<never> = () => ({ status: 'not_found', data: null })) {}

  lookup(ips: readonly string[], _options: LookupOptions): Promise<Map<string, SourceOutcome<never>>> {
    this.asked.push(...ips);
    return Promise.resolve(new Map(ips.map((ip) => [ip, this.answer(ip)])));
  }

  availability(): SourceAvailability {
    return this.state;
  }

  unsupported(ip: string): string | undefined {
    return ip.includes(':') ? 'IPv4 only' : undefined;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

function setUp(options: { maxmindAsns?: Record<string, number>; failingCymru?: string[]; chunkSize?: number } = {}) {
  const clock = new ManualClock(Date.UTC(2026, 11, 1));
  const store = new MemoryStore();
  const l1 = new MemoryTier({ maxEntries: 1000, ttlMs: DAY });
  const sources = {
    maxmind: new FakeMaxMind(options.maxmindAsns),
    cymru: new FakeCymru(new Set(options.failingCymru)),
    greynoise: new FakeHttpSource(),
    dshield: new FakeHttpSource(),
  };
  const counted: string[] = [];
  const enricher = new Enricher({
    sources,
    tiers: new TieredLoader(l1, store),
    store,
    clock,
    chunkSize: options.chunkSize ?? 500,
    lookups: { record: (ips) => counted.push(...ips) },
    freshness: { cymru: 7 * DAY, greynoise: DAY, dshield: DAY },
  });
  const enrich = async (inputs: string[], extra: { refresh?: boolean } = {}) => {
    const { results, stats } = await enricher.enrich({ inputs, deadline: clock.now() + 10_000, ...extra });
    return { records: results.map((json) => JSON.parse(json) as IpRecord), stats };
  };
  return { clock, store, l1, sources, counted, enrich, enricher };
}

describe('Enricher', () => {
  it('answers every input in order and asks each source once per distinct address', async () => {
    const { sources, enrich } = setUp();
    const { records, stats } = await enrich(['8.8.8.8', 'nonsense', '10.0.0.1', '1.1.1.1', '8.8.8.8']);
    expect(records.map((record) => [record.input, record.status])).toEqual([
      ['8.8.8.8', 'ok'],
      ['nonsense', 'invalid'],
      ['10.0.0.1', 'bogon'],
      ['1.1.1.1', 'ok'],
      ['8.8.8.8', 'ok'],
    ]);
    expect(sources.cymru.batches).toEqual([['8.8.8.8', '1.1.1.1']]);
    expect(sources.greynoise.asked).toEqual(['8.8.8.8', '1.1.1.1']);
    expect(sources.maxmind.asked).toEqual(['8.8.8.8', '1.1.1.1']);
    expect(stats).toMatchObject({ total: 5, unique: 2, invalid: 1, bogon: 1 });
  });

  it('hands over the head of the list in input order while a later chunk is still asking', async () => {
    const { sources, enricher, clock } = setUp({ chunkSize: 2 });
    let release = () => {};
    const released = new Promise<void>((resolve) => (release = resolve));
    sources.cymru.answering = (ips) => (ips.includes('3.3.3.3') ? released : Promise.resolve());
    const handed: string[][] = [];
    const inputs = ['1.1.1.1', 'nonsense', '2.2.2.2', '3.3.3.3', '1.1.1.1', '4.4.4.4', '5.5.5.5'];
    const done = enricher.enrichInOrder({ inputs, deadline: clock.now() + 10_000 }, (records) =>
      handed.push(records.map((json) => (JSON.parse(json) as IpRecord).input)),
    );
    await vi.waitFor(() => expect(handed.flat()).toEqual(['1.1.1.1', 'nonsense', '2.2.2.2']));
    release();
    await done;
    expect(handed.flat()).toEqual(inputs);
    const whole = (await enricher.enrich({ inputs, deadline: clock.now() + 10_000 })).results;
    expect(whole.map((json) => (JSON.parse(json) as IpRecord).input)).toEqual(inputs);
  });

  it('asks nothing again for addresses answered fresh, and counts their lookups instead', async () => {
    const { sources, counted, enrich } = setUp();
    await enrich(['8.8.8.8']);
    const { records, stats } = await enrich(['8.8.8.8']);
    expect(records[0]!.status).toBe('ok');
    expect(sources.cymru.batches).toHaveLength(1);
    expect(sources.greynoise.asked).toEqual(['8.8.8.8']);
    expect(stats.tiers.l1.hits).toBe(1);
    expect(counted).toEqual(['8.8.8.8']);
  });

  it('skips Team Cymru for an address whose ASN MaxMind knows', async () => {
    const { sources, enrich } = setUp({ maxmindAsns: { '81.2.69.1': 20712 } });
    const { records } = await enrich(['81.2.69.1', '8.8.8.8']);
    expect(sources.cymru.batches).toEqual([['8.8.8.8']]);
    expect(records[0]!.asn).toMatchObject({ number: 20712, source: 'maxmind' });
    expect(records[0]!.sources.cymru).toEqual({ status: 'skipped', fetchedAt: null, error: 'MaxMind knows the ASN' });
  });

  it('marks only the addresses of a failing chunk, and stores the chunks that succeeded', async () => {
    const { store, enrich } = setUp({ chunkSize: 2, failingCymru: ['3.3.3.3'] });
    const { records } = await enrich(['1.1.1.1', '2.2.2.2', '3.3.3.3', '4.4.4.4', '5.5.5.5']);
    expect(records.map((record) => [record.ip, record.status, record.sources.cymru.status])).toEqual([
      ['1.1.1.1', 'ok', 'ok'],
      ['2.2.2.2', 'ok', 'ok'],
      ['3.3.3.3', 'partial', 'error'],
      ['4.4.4.4', 'partial', 'error'],
      ['5.5.5.5', 'ok', 'ok'],
    ]);
    expect(records[2]!.sources.cymru.error).toBe('bulk query failed: reset');
    expect(store.records.get('1.1.1.1')?.sources.cymru?.status).toBe('ok');
    expect(store.records.get('3.3.3.3')?.sources.cymru).toBeNull();
  });

  it('asks every source again on refresh, and keeps what a source failing meanwhile had stored', async () => {
    const { sources, store, clock, enrich } = setUp();
    await enrich(['8.8.8.8']);
    await clock.advance(1000);
    sources.cymru = new FakeCymru(new Set(['8.8.8.8']));
    const { records } = await enrich(['8.8.8.8'], { refresh: true });
    expect(sources.cymru.batches).toEqual([['8.8.8.8']]);
    expect(sources.greynoise.asked).toEqual(['8.8.8.8', '8.8.8.8']);
    expect(records[0]!.status).toBe('partial');
    expect(records[0]!.sources.cymru.status).toBe('error');
    expect(records[0]!.asn).toMatchObject({ number: 64500 });
    expect(store.records.get('8.8.8.8')?.sources.cymru?.status).toBe('ok');
  });

  it('ends a streamed answer without waiting for the L1 write, and waits for that write when closed', async () => {
    const { l1, enricher, clock } = setUp();
    let release = () => {};
    const released = new Promise<void>((resolve) => (release = resolve));
    const written: string[] = [];
    l1.setMany = async (records) => {
      await released;
      written.push(...records.map((record) => record.ip));
    };
    await enricher.enrich({ inputs: ['8.8.8.8', '1.1.1.1'], deadline: clock.now() + 10_000 });
    expect(written).toEqual([]);
    let closed = false;
    const closing = enricher.close().then(() => (closed = true));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(closed).toBe(false);
    release();
    await closing;
    expect(written).toEqual(['8.8.8.8', '1.1.1.1']);
  });

  it('fills L1 with what it read from L2', async () => {
    const { store, l1, enrich } = setUp();
    await enrich(['8.8.8.8']);
    await l1.close();
    expect(l1.peek('8.8.8.8')).toBeUndefined();
    const { stats } = await enrich(['8.8.8.8']);
    expect(stats.tiers.l2.hits).toBe(1);
    expect(l1.peek('8.8.8.8')?.sources.cymru?.status).toBe('ok');
    expect(store.loads).toBe(2);
  });

  it('leaves a record ok when a source is off by configuration, and partial when the upstream refused the key', async () => {
    const { sources, enrich } = setUp();
    sources.dshield.state = { status: 'disabled', reason: 'DSHIELD_CONTACT is not set' };
    const configured = await enrich(['8.8.8.8']);
    expect(configured.records[0]!.status).toBe('ok');
    expect(configured.records[0]!.sources.dshield).toMatchObject({ status: 'disabled', error: 'DSHIELD_CONTACT is not set' });

    sources.greynoise.state = { status: 'disabled', reason: 'GreyNoise rejected the API key (401)', refused: true };
    const refused = await enrich(['1.1.1.1']);
    expect(refused.records[0]!.status).toBe('partial');
    expect(refused.records[0]!.sources.greynoise).toMatchObject({ status: 'disabled', error: 'GreyNoise rejected the API key (401)' });
    expect(sources.dshield.asked).toEqual([]);
  });

  it('answers an address a source cannot serve as unsupported without asking it', async () => {
    const { sources, enrich } = setUp();
    const { records } = await enrich(['2001:4860:4860::8888']);
    expect(records[0]!.sources.greynoise).toMatchObject({ status: 'unsupported', error: 'IPv4 only' });
    expect(records[0]!.status).toBe('ok');
    expect(sources.greynoise.asked).toEqual([]);
  });
});
