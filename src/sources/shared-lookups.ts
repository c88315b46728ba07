import type { LookupOptions } from '../enrich/sources.js';
import type { LookupRun, UpstreamAdmission } from '../limiter/admission.js';
import type { SourceOutcome } from '../record/model.js';

interface Asking<T> {
  deadline: number;
  answer: Promise<SourceOutcome<T>>;
}

function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (reason: Error) => void;
  const promise = new Promise<T>((yes, no) => {
    resolve = yes;
    reject = no;
  });
  // Nobody may have joined: a lookup given up by its own caller is that caller's failure only.
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

/** Rejects when the signal aborts; `stop` removes the listener. */
function abortion(signal: AbortSignal | undefined): { aborted: Promise<never>; stop: () => void } {
  if (!signal) return { aborted: new Promise<never>(() => undefined), stop: () => undefined };
  let stop = () => undefined as void;
  const aborted = new Promise<never>((_, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    if (signal.aborted) onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    stop = () => signal.removeEventListener('abort', onAbort);
  });
  aborted.catch(() => undefined);
  return { aborted, stop };
}

/**
 * Concurrent lookups of one address share one request: a lookup that finds the address already queued or
 * in flight for another waits for that answer instead of asking the upstream again (a hot address asked by
 * a hundred requests at once costs one request, and one token of the budget). It joins only a lookup whose
 * deadline is no later than its own, so that it never waits longer than it may, and takes that lookup's
 * answer as its own, `rate_limited` included. If the lookup it joined is given up by its caller (a job
 * cancelled), it asks for the address itself.
 */
export class SharedLookups {
  readonly #asking = new Map<string, Asking<unknown>>();

  constructor(private readonly admission: Pick<UpstreamAdmission, 'lookupEach'>) {}

  /** As UpstreamAdmission.lookupEach, for the addresses no other lookup is asking for already. */
  async lookupEach<T>(
    ips: readonly string[],
    options: LookupOptions,
    lookupOne: (ip: string, run: LookupRun) => Promise<SourceOutcome<T>>,
  ): Promise<Map<string, SourceOutcome<T>>> {
    const distinct = [...new Set(ips)];
    const own: string[] = [];
    const joined: Array<[string, Promise<SourceOutcome<T>>]> = [];
    for (const ip of distinct) {
      const asking = this.#asking.get(ip) as Asking<T> | undefined;
      if (asking && asking.deadline <= options.deadline) joined.push([ip, asking.answer]);
      else own.push(ip);
    }
    const [results, theirs] = await Promise.all([this.#ask(own, options, lookupOne), this.#join(joined, options, lookupOne)]);
    return new Map(distinct.map((ip) => [ip, (results.get(ip) ?? theirs.get(ip))!]));
  }

  /** Asks the upstream, letting later lookups join each address until its answer is known. */
  async #ask<T>(
    ips: readonly string[],
    options: LookupOptions,
    lookupOne: (ip: string, run: LookupRun) => Promise<SourceOutcome<T>>,
  ): Promise<Map<string, SourceOutcome<T>>> {
    if (ips.length === 0) return new Map();
    const answers = new Map(ips.map((ip) => [ip, deferred<SourceOutcome<T>>()]));
    const entries = new Map<string, Asking<unknown>>();
    for (const [ip, answer] of answers) {
      const current = this.#asking.get(ip);
      // The earliest deadline is the one every later lookup can join.
      if (current && current.deadline <= options.deadline) continue;
      const asking = { deadline: options.deadline, answer: answer.promise };
      this.#asking.set(ip, asking);
      entries.set(ip, asking);
    }
    try {
      const results = await this.admission.lookupEach(ips, options, async (ip, run) => {
        const outcome = await lookupOne(ip, run);
        answers.get(ip)?.resolve(outcome);
        return outcome;
      });
      for (const [ip, outcome] of results) answers.get(ip)?.resolve(outcome);
      return results;
    } catch (error) {
      for (const answer of answers.values()) answer.reject(error as Error);
      throw error;
    } finally {
      for (const [ip, asking] of entries) if (this.#asking.get(ip) === asking) this.#asking.delete(ip);
    }
  }

  async #join<T>(
    joined: ReadonlyArray<[string, Promise<SourceOutcome<T>>]>,
    options: LookupOptions,
    lookupOne: (ip: string, run: LookupRun) => Promise<SourceOutcome<T>>,
  ): Promise<Map<string, SourceOutcome<T>>> {
    if (joined.length === 0) return new Map();
    const { aborted, stop } = abortion(options.signal);
    try {
      const answers = joined.map(async ([ip, answer]): Promise<[string, SourceOutcome<T>]> => {
        try {
          return [ip, await answer];
        } catch {
          return [ip, (await this.lookupEach([ip], options, lookupOne)).get(ip)!];
        }
      });
      return new Map(await Promise.race([Promise.all(answers), aborted]));
    } finally {
      stop();
    }
  }
}
