import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { CacheState, DatabaseState, Readiness, RedisState, SourceState } from '../../schemas/readiness.js';
import { PRODUCT } from '../../version.js';

/** The parts of /readyz, each reported by the plugin that owns it. */
interface Parts {
  database: DatabaseState;
  redis: RedisState;
  cache: CacheState;
  maxmind: SourceState;
  cymru: SourceState;
  greynoise: SourceState;
  dshield: SourceState;
}

type Check<T> = () => T | Promise<T>;

/**
 * Where each plugin says how its part is doing; /readyz only gathers. Built-in defaults in use (a setting
 * left unset) are noted here too, logged once at boot and listed in every report.
 */
export class ReadinessRegistry {
  readonly #checks: { [K in keyof Parts]?: Check<Parts[K]> } = {};
  readonly #defaults: string[] = [];

  constructor(private readonly log: FastifyInstance['log']) {}

  add<K extends keyof Parts>(part: K, check: Check<Parts[K]>): void {
    if (this.#checks[part]) throw new Error(`readiness: ${part} is reported twice`);
    (this.#checks as Record<K, Check<Parts[K]>>)[part] = check;
  }

  noteDefault(line: string): void {
    this.#defaults.push(line);
    this.log.info(`${PRODUCT} default in use: ${line}`);
  }

  async report(): Promise<Readiness> {
    const ask = <K extends keyof Parts>(part: K): Promise<Parts[K]> => {
      const check = this.#checks[part];
      if (!check) throw new Error(`readiness: no plugin reports ${part}`);
      return Promise.resolve(check());
    };
    const [database, redis, cache, maxmind, cymru, greynoise, dshield] = await Promise.all([
      ask('database'),
      ask('redis'),
      ask('cache'),
      ask('maxmind'),
      ask('cymru'),
      ask('greynoise'),
      ask('dshield'),
    ]);
    // A Redis that no longer answers degrades the service even before the cache tier has noticed it.
    const degraded = cache.status === 'degraded' || redis.status === 'unreachable';
    const status = database.status === 'error' ? 'unready' : degraded ? 'degraded' : 'ready';
    return { status, database, redis, cache, sources: { maxmind, cymru, greynoise, dshield }, defaults: [...this.#defaults] };
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    readiness: ReadinessRegistry;
  }
}

async function readiness(app: FastifyInstance) {
  app.decorate('readiness', new ReadinessRegistry(app.log));
}

export default fp(readiness, { name: 'readiness' });
