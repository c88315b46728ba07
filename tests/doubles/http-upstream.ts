import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Clock } from '../../src/clock.js';

/** One programmed answer. */
export type ScriptedResponse =
  | { kind: 'answer'; status: number; body: string; headers?: Record<string, string> }
  /** Never answers; the connection stays open until the client gives up or the double closes. */
  | { kind: 'hang' }
  /** Sends the headers at once, then the body one byte every `everyMs`. */
  | { kind: 'trickle'; status: number; body: string; everyMs: number };

export const respond = {
  json: (body: unknown, status = 200): ScriptedResponse => ({
    kind: 'answer',
    status,
    body: JSON.stringify(body),
    headers: { 'content-type': 'application/json' },
  }),
  /** GreyNoise's answer for an address it has never seen. */
  notObserved: (ip: string): ScriptedResponse =>
    respond.json(
      { ip, noise: false, riot: false, message: 'IP not observed scanning the internet or contained in RIOT data set.' },
      404,
    ),
  limited: (retryAfterSeconds: number): ScriptedResponse => ({
    kind: 'answer',
    status: 429,
    body: '{"message":"rate limit exceeded"}',
    headers: { 'retry-after': String(retryAfterSeconds) },
  }),
  limitedUntil: (moment: Date): ScriptedResponse => ({
    kind: 'answer',
    status: 429,
    body: '{"message":"rate limit exceeded"}',
    headers: { 'retry-after': moment.toUTCString() },
  }),
  unauthorized: (): ScriptedResponse => respond.json({ message: 'Invalid API key' }, 401),
  serverError: (): ScriptedResponse => ({ kind: 'answer', status: 500, body: 'Internal Server Error' }),
  brokenJson: (): ScriptedResponse => ({
    kind: 'answer',
    status: 200,
    body: '{"ip": {"count": 3, ',
    headers: { 'content-type': 'application/json' },
  }),
  hang: (): ScriptedResponse => ({ kind: 'hang' }),
  trickle: (body: unknown, everyMs: number): ScriptedResponse => ({ kind: 'trickle', status: 200, body: JSON.stringify(body), everyMs }),
};

export interface RecordedRequest {
  /** When the request arrived, by the double's clock. */
  at: number;
  method: string;
  /** Path and query as sent. */
  path: string;
  /** The address asked about, decoded from the path. */
  ip: string;
  headers: IncomingHttpHeaders;
}

export interface HttpUpstreamDoubleOptions {
  /** Times recorded requests and runs the ceiling; Date.now when absent. */
  clock?: Pick<Clock, 'now'>;
  /** Added before every answer, in real time. */
  latencyMs?: number;
  /** The double's own limit, enforced with 429 + Retry-After like a real upstream (burst defaults to rate). */
  ceiling?: { rate: number; burst?: number };
}

const GREYNOISE_PATH = /^\/v3\/community\/([^/?]+)$/;
const DSHIELD_PATH = /^\/api\/ip\/([^/?]+)\?json$/;

/** What the real services say about an address nobody programmed: nothing known. */
function defaultResponse(path: string, ip: string): ScriptedResponse {
  if (GREYNOISE_PATH.test(path)) return respond.notObserved(ip);
  if (DSHIELD_PATH.test(path)) {
    return respond.json({
      ip: { number: ip, count: null, attacks: null, maxdate: null, mindate: null, updated: null, threatfeeds: null },
    });
  }
  return respond.json({ message: 'no such endpoint' }, 404);
}

/**
 * A real HTTP server on loopback that plays GreyNoise (/v3/community/{ip}) and DShield (/api/ip/{ip}?json).
 * Answers come from, in order: the ceiling (a 429 when it is exceeded), the shared queue, the per-address script
 * (whose last entry repeats) and a "nothing known" default.
 */
export class HttpUpstreamDouble {
  readonly url: string;
  readonly requests: RecordedRequest[] = [];
  readonly #server: Server;
  readonly #clock: Pick<Clock, 'now'>;
  readonly #latencyMs: number;
  readonly #ceiling: { rate: number; burst: number; tokens: number; at: number } | undefined;
  readonly #queue: ScriptedResponse[] = [];
  readonly #byIp = new Map<string, ScriptedResponse[]>();
  #inFlight = 0;
  #mostInFlight = 0;

  private constructor(server: Server, options: HttpUpstreamDoubleOptions) {
    this.#server = server;
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    this.#clock = options.clock ?? { now: () => Date.now() };
    this.#latencyMs = options.latencyMs ?? 0;
    if (options.ceiling) {
      const burst = options.ceiling.burst ?? options.ceiling.rate;
      this.#ceiling = { rate: options.ceiling.rate, burst, tokens: burst, at: this.#clock.now() };
    }
    server.on('request', (req, res) => {
      const path = req.url ?? '/';
      const match = GREYNOISE_PATH.exec(path) ?? DSHIELD_PATH.exec(path);
      const ip = decodeURIComponent(match?.[1] ?? '');
      this.requests.push({ at: this.#clock.now(), method: req.method ?? 'GET', path, ip, headers: req.headers });
      this.#inFlight += 1;
      this.#mostInFlight = Math.max(this.#mostInFlight, this.#inFlight);
      res.once('close', () => (this.#inFlight -= 1));
      const response = this.#next(path, ip);
      if (response.kind === 'hang') return;
      if (response.kind === 'trickle') {
        this.#trickle(res, response);
        return;
      }
      const send = () => this.#send(res, response);
      if (this.#latencyMs > 0) setTimeout(send, this.#latencyMs);
      else send();
    });
  }

  static async start(options: HttpUpstreamDoubleOptions = {}): Promise<HttpUpstreamDouble> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    return new HttpUpstreamDouble(server, options);
  }

  /** Answers for one address, one per request; the last keeps being given. */
  respondTo(ip: string, ...responses: ScriptedResponse[]): void {
    this.#byIp.set(ip, responses);
  }

  /** Answers for whichever requests come next, before any per-address script. */
  enqueue(...responses: ScriptedResponse[]): void {
    this.#queue.push(...responses);
  }

  /** The most requests that were open at once: arrived, and neither answered nor given up. */
  get mostInFlight(): number {
    return this.#mostInFlight;
  }

  requestsFor(ip: string): RecordedRequest[] {
    return this.requests.filter((r) => r.ip === ip);
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve, reject) => this.#server.close((error) => (error ? reject(error) : resolve())));
  }

  #next(path: string, ip: string): ScriptedResponse {
    const refusal = this.#overCeiling();
    if (refusal) return refusal;
    const queued = this.#queue.shift();
    if (queued) return queued;
    const script = this.#byIp.get(ip) ?? [];
    const scripted = script.length > 1 ? script.shift() : script[0];
    return scripted ?? defaultResponse(path, ip);
  }

  /** A plain token-count bucket, deliberately not the limiter's code, so that it checks that code. */
  #overCeiling(): ScriptedResponse | undefined {
    const ceiling = this.#ceiling;
    if (!ceiling) return undefined;
    const now = this.#clock.now();
    ceiling.tokens = Math.min(ceiling.burst, ceiling.tokens + ((now - ceiling.at) * ceiling.rate) / 1000);
    ceiling.at = now;
    if (ceiling.tokens >= 1) {
      ceiling.tokens -= 1;
      return undefined;
    }
    return respond.limited(Math.ceil((1 - ceiling.tokens) / ceiling.rate));
  }

  #trickle(res: ServerResponse, response: Extract<ScriptedResponse, { kind: 'trickle' }>): void {
    res.writeHead(response.status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(response.body)) });
    let sent = 0;
    const timer = setInterval(() => {
      res.write(response.body.slice(sent, sent + 1));
      sent += 1;
      if (sent < response.body.length) return;
      clearInterval(timer);
      res.end();
    }, response.everyMs);
    res.once('close', () => clearInterval(timer));
  }

  #send(res: ServerResponse, response: Extract<ScriptedResponse, { kind: 'answer' }>): void {
    res.writeHead(response.status, response.headers);
    res.end(response.body);
  }
}
