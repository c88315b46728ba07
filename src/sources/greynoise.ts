import type { LookupOptions, PerAddressSource, SourceAvailability } from '../enrich/sources.js';
import { ipVersion } from '../ip/address.js';
import type { GreyNoise, SourceOutcome } from '../record/model.js';
import { traceUpstreamCall } from '../tracing/upstreams.js';
import { VERSION } from '../version.js';
import { HttpUpstream, userAgent, type HttpUpstreamOptions, type UpstreamAnswer, type Verdict } from './http.js';
import { parseJsonObject, text } from './json.js';

export type GreyNoiseSourceOptions = Omit<HttpUpstreamOptions, 'headers'> & { apiKey?: string };

const REJECTED_KEY = 'GreyNoise rejected the API key (401)';

function toGreyNoise(body: Record<string, unknown>): GreyNoise {
  return {
    noise: body.noise === true,
    riot: body.riot === true,
    classification: text(body.classification),
    name: text(body.name),
    link: text(body.link),
    lastSeen: text(body.last_seen),
  };
}

/** GreyNoise community API: is an address an Internet scanner or a common business service? */
export class GreyNoiseSource implements PerAddressSource<GreyNoise> {
  readonly #http: HttpUpstream;

  constructor(options: GreyNoiseSourceOptions) {
    this.#http = new HttpUpstream({
      ...options,
      headers: { accept: 'application/json', 'user-agent': userAgent(VERSION), ...(options.apiKey ? { key: options.apiKey } : {}) },
    });
  }

  availability(): SourceAvailability {
    return this.#http.availability();
  }

  unsupported(ip: string): string | undefined {
    return ipVersion(ip) === 6 ? 'the GreyNoise community API covers IPv4 only' : undefined;
  }

  lookup(ips: readonly string[], options: LookupOptions): Promise<Map<string, SourceOutcome<GreyNoise>>> {
    return this.#http.lookupEach(ips, options, (ip, run) => {
      const reason = this.unsupported(ip);
      if (reason !== undefined) return Promise.resolve({ status: 'unsupported', reason });
      return traceUpstreamCall('greynoise', () => this.#http.get(`/v3/community/${ip}`, run, (answer) => this.#interpret(ip, answer)));
    });
  }

  close(): Promise<void> {
    return this.#http.close();
  }

  #interpret(ip: string, answer: UpstreamAnswer): Verdict<GreyNoise> {
    const body = parseJsonObject(answer.body);
    switch (answer.statusCode) {
      case 200:
        return body ? { status: 'ok', data: toGreyNoise(body) } : { status: 'retry', error: 'unparseable JSON' };
      case 404:
        // "IP not observed" is GreyNoise's real answer for an address it has never seen, and it names the
        // address; any other 404 comes from something else (a wrong base URL, a proxy) and must not be
        // remembered as an answer.
        return body?.ip === ip
          ? { status: 'not_found', data: toGreyNoise(body) }
          : { status: 'error', error: 'HTTP 404 without a GreyNoise answer' };
      case 401:
        return { status: 'refused', reason: REJECTED_KEY };
      default: {
        const message = text(body?.message);
        return { status: 'error', error: `HTTP ${answer.statusCode}${message ? `: ${message.slice(0, 200)}` : ''}` };
      }
    }
  }
}
