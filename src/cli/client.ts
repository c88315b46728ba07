import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { request, type Dispatcher } from 'undici';
import { errorMessage } from '../errors/message.js';
import { VERSION } from '../version.js';
import type { JobEngine, JobView, Submission } from './engine.js';
import { CliError, EXIT, usageError } from './exit.js';

/** The service refused, or could not be reached: exit 4 with what it said. */
export class ServerError extends CliError {
  override name = 'ServerError';

  constructor(message: string) {
    super(message, EXIT.server);
  }
}

interface ProblemLike {
  title?: unknown;
  detail?: unknown;
  code?: unknown;
}

/** Addresses per chunk of the text/plain body, so a million of them are never one string. */
const BODY_LINES = 10_000;

export function serverUrl(given: string): URL {
  let url: URL;
  try {
    url = new URL(given);
  } catch {
    throw usageError(`--server ${JSON.stringify(given)} is not a URL (e.g. http://127.0.0.1:8080)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw usageError(`--server ${given} must be an http:// or https:// URL`);
  if (!url.pathname.endsWith('/')) url.pathname += '/';
  return url;
}

/** The jobs API of a running service (POST /jobs, GET /jobs/{id}, its results, DELETE). */
export class HttpJobs implements JobEngine {
  readonly detached = true;
  readonly where: string;

  constructor(private readonly base: URL) {
    this.where = base.href.replace(/\/$/, '');
  }

  async submit(submission: Submission): Promise<JobView> {
    const query = new URLSearchParams();
    for (const source of submission.sources ?? []) query.append('sources', source);
    if (submission.refresh) query.set('refresh', 'true');
    if (submission.label) query.set('label', submission.label);
    const addresses = submission.addresses;
    const body = Readable.from(
      (function* () {
        let chunk: string[] = [];
        for (const address of addresses) {
          chunk.push(address);
          if (chunk.length === BODY_LINES) {
            yield `${chunk.join('\n')}\n`;
            chunk = [];
          }
        }
        if (chunk.length > 0) yield `${chunk.join('\n')}\n`;
      })(),
      { objectMode: false },
    );
    const suffix = query.size > 0 ? `?${query.toString()}` : '';
    return this.#json('POST', `jobs${suffix}`, { body, headers: { 'content-type': 'text/plain; charset=utf-8' } });
  }

  get(id: string): Promise<JobView> {
    return this.#json('GET', `jobs/${encodeURIComponent(id)}`);
  }

  cancel(id: string): Promise<JobView> {
    return this.#json('DELETE', `jobs/${encodeURIComponent(id)}`);
  }

  async *results(id: string, signal?: AbortSignal): AsyncIterable<string> {
    const response = await this.#send('GET', `jobs/${encodeURIComponent(id)}/results`, {
      headers: { accept: 'application/x-ndjson' },
      signal,
    });
    try {
      for await (const line of createInterface({ input: response.body, crlfDelay: Infinity })) if (line !== '') yield line;
    } catch (error) {
      if (signal?.aborted) throw error;
      throw new ServerError(`the results of job ${id} from ${this.where} broke off: ${errorMessage(error)}`);
    }
  }

  async close(): Promise<void> {}

  async #json<T>(method: Dispatcher.HttpMethod, path: string, options: Partial<Dispatcher.RequestOptions> = {}): Promise<T> {
    const response = await this.#send(method, path, { ...options, headers: { accept: 'application/json', ...options.headers } });
    try {
      return (await response.body.json()) as T;
    } catch (error) {
      throw new ServerError(`${this.where} answered ${method} /${path} with something that is not JSON: ${errorMessage(error)}`);
    }
  }

  async #send(method: Dispatcher.HttpMethod, path: string, options: Partial<Dispatcher.RequestOptions>): Promise<Dispatcher.ResponseData> {
    const url = new URL(path, this.base);
    let response: Dispatcher.ResponseData;
    try {
      response = await request(url, {
        ...options,
        method,
        headers: { 'user-agent': `ip-enrich-cli/${VERSION}`, ...options.headers },
        headersTimeout: 60_000,
        bodyTimeout: 0,
      });
    } catch (error) {
      if ((options.signal as AbortSignal | undefined)?.aborted) throw error;
      const cause = (error as { cause?: unknown }).cause;
      throw new ServerError(`cannot reach the service at ${this.where}: ${errorMessage(cause ?? error)}`);
    }
    if (response.statusCode < 400) return response;
    throw new ServerError(await refusal(method, url, response));
  }
}

/** `POST /jobs refused: 413 too-many-addresses: the list has 2000000 lines; JOB_MAX_IPS allows 1000000 per job` */
async function refusal(method: string, url: URL, response: Dispatcher.ResponseData): Promise<string> {
  const text = await response.body.text().catch(() => '');
  let problem: ProblemLike = {};
  try {
    problem = JSON.parse(text) as ProblemLike;
  } catch {
    // Not problem+json (a proxy's page): its first line says enough.
  }
  const code = typeof problem.code === 'string' ? ` ${problem.code}` : '';
  const detail =
    typeof problem.detail === 'string' ? problem.detail : typeof problem.title === 'string' ? problem.title : text.split('\n', 1)[0]?.slice(0, 200);
  return `${method} ${url.pathname} refused by ${url.origin}: ${response.statusCode}${code}${detail ? `: ${detail}` : ''}`;
}
