import { performance } from 'node:perf_hooks';
import { Agent, request } from 'undici';
import type { EnrichStats } from '../src/enrich/stats.js';
import type { IpRecord, SourceName } from '../src/record/model.js';

export interface TimedAnswer {
  /** From the first byte written to the last byte of the answer received, by performance.now(); decoding and
   *  parsing the text afterwards is the client's own work and not counted. */
  ms: number;
  /** Wall-clock bounds of the exchange (Date.now), to place upstream traffic recorded by the doubles. */
  startedAt: number;
  endedAt: number;
  bytes: number;
  results: IpRecord[];
  stats: EnrichStats;
}

const agent = new Agent({ keepAliveTimeout: 60_000, headersTimeout: 600_000, bodyTimeout: 600_000 });

/**
 * POST /enrich with the body serialized beforehand, so the time is the service's and the wire's only.
 * `atLastByte` runs once the last byte has arrived, before the client decodes and parses the answer, and before
 * anything the service does after answering (its Redis writes behind the answer).
 */
export async function timedEnrich(
  baseUrl: string,
  body: { ips: readonly string[]; sources?: readonly SourceName[]; refresh?: boolean },
  atLastByte?: () => Promise<void>,
): Promise<TimedAnswer> {
  const payload = JSON.stringify(body);
  const startedAt = Date.now();
  const start = performance.now();
  const response = await request(`${baseUrl}/enrich`, {
    dispatcher: agent,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: payload,
  });
  const pieces: Buffer[] = [];
  for await (const piece of response.body) pieces.push(piece as Buffer);
  const ms = performance.now() - start;
  const endedAt = Date.now();
  await atLastByte?.();
  const raw = Buffer.concat(pieces).toString('utf8');
  if (response.statusCode !== 200) throw new Error(`POST /enrich answered ${response.statusCode}: ${raw.slice(0, 500)}`);
  const answer = JSON.parse(raw) as { results: IpRecord[]; stats: EnrichStats };
  return { ms, startedAt, endedAt, bytes: Buffer.byteLength(raw), results: answer.results, stats: answer.stats };
}

/**
 * The status of a GET through the same client as the timed requests. The services' readiness is polled
 * with it, so that the client's own first-use costs (undici compiles its HTTP parser then, ~18 ms) and the
 * connection come before the first timed request rather than inside it.
 */
export async function getStatus(url: string): Promise<number> {
  const response = await request(url, { dispatcher: agent });
  await response.body.dump();
  return response.statusCode;
}

export async function getJson(url: string): Promise<unknown> {
  const response = await request(url, { dispatcher: agent });
  const raw = await response.body.text();
  if (response.statusCode !== 200) throw new Error(`GET ${url} answered ${response.statusCode}: ${raw.slice(0, 500)}`);
  return JSON.parse(raw) as unknown;
}

export async function closeClient(): Promise<void> {
  await agent.close();
}
