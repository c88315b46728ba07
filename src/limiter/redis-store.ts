import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import {
  BACKOFF_BASE_MS,
  BACKOFF_MAX_MS,
  type BucketPolicy,
  type BucketState,
  type BucketStore,
  type Reservation,
  type Reservations,
} from './token-bucket.js';

/** Idle keys outlive the longest block by a day, so a forgotten upstream does not stay in Redis forever. */
const IDLE_TTL_MS = 86_400_000;

// Numbers are written with %.17g: Redis's own number-to-string conversion keeps 14 digits, which would
// round epoch-millisecond timestamps with a fractional interval and let the budget drift.
const RESERVE = `
local now, notBefore = tonumber(ARGV[1]), tonumber(ARGV[2])
local interval, tolerance = tonumber(ARGV[3]), tonumber(ARGV[4])
local fields = redis.call('HMGET', KEYS[1], 'tat', 'blockedUntil', 'failures')
local tat = math.max(tonumber(fields[1]) or now, tonumber(ARGV[5]))
local blocked = tonumber(fields[2]) or 0
local reply = {math.ceil(blocked), tonumber(fields[3]) or 0, ''}
local reserved = false
for i = 6, #ARGV do
  local at = math.ceil(math.max(now, tat - tolerance, blocked, notBefore))
  if at > tonumber(ARGV[i]) then
    reply[#reply + 1] = 0
  else
    tat = math.max(tat, at) + interval
    reserved = true
    reply[#reply + 1] = 1
  end
  reply[#reply + 1] = at
end
if reserved then
  redis.call('HSET', KEYS[1], 'tat', string.format('%.17g', tat))
  redis.call('PEXPIRE', KEYS[1], math.ceil(math.max(tat, blocked) - now) + ${IDLE_TTL_MS})
end
reply[3] = string.format('%.17g', tat)
return reply
`;

const FAIL = `
local now, delay = tonumber(ARGV[1]), tonumber(ARGV[2])
local fields = redis.call('HMGET', KEYS[1], 'blockedUntil', 'failures')
local blocked = tonumber(fields[1]) or 0
local failures = tonumber(fields[2]) or 0
if now < blocked then
  if delay >= 0 and now + delay > blocked then blocked = now + delay end
else
  failures = failures + 1
  if delay >= 0 then
    blocked = now + delay
  else
    blocked = now + math.min(${BACKOFF_BASE_MS} * 2 ^ math.min(failures - 1, 16), ${BACKOFF_MAX_MS})
  end
end
redis.call('HSET', KEYS[1], 'blockedUntil', string.format('%.17g', blocked), 'failures', failures)
redis.call('PEXPIRE', KEYS[1], math.ceil(blocked - now) + ${IDLE_TTL_MS})
return {math.ceil(blocked), failures}
`;

// Only an existing key is touched: creating one here would leave a key without expiry.
const SUCCEED = `
if redis.call('HEXISTS', KEYS[1], 'failures') == 1 then redis.call('HSET', KEYS[1], 'failures', 0) end
return 0
`;

class LuaScript {
  readonly #source: string;
  readonly #sha: string;

  constructor(source: string) {
    this.#source = source;
    this.#sha = createHash('sha1').update(source).digest('hex');
  }

  /** EVALSHA, loading the script with EVAL the first time a server has not seen it. */
  async run(redis: Redis, key: string, args: Array<string | number>): Promise<unknown> {
    try {
      return await redis.evalsha(this.#sha, 1, key, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return redis.eval(this.#source, 1, key, ...args);
    }
  }
}

const reserveScript = new LuaScript(RESERVE);
const failScript = new LuaScript(FAIL);
const succeedScript = new LuaScript(SUCCEED);

/** The bucket of one upstream in one Redis hash, so that every replica draws on the same budget. */
export class RedisBucketStore implements BucketStore {
  readonly #redis: Redis;
  readonly #key: string;
  readonly #policy: BucketPolicy;

  constructor(redis: Redis, key: string, policy: BucketPolicy) {
    this.#redis = redis;
    this.#key = key;
    this.#policy = policy;
  }

  async reserve(now: number, deadlines: readonly number[], notBefore: number, tatFloor: number): Promise<Reservations> {
    const reply = (await reserveScript.run(this.#redis, this.#key, [
      now,
      notBefore,
      this.#policy.intervalMs,
      this.#policy.toleranceMs,
      tatFloor,
      ...deadlines,
    ])) as [number, number, string, ...number[]];
    const [blockedUntil, consecutiveFailures, tat] = reply;
    const moments: Reservation[] = [];
    for (let i = 3; i < reply.length; i += 2) moments.push({ granted: reply[i] === 1, at: (reply[i + 1] as number | undefined) ?? 0 });
    return { blockedUntil, consecutiveFailures, moments, tat: Number(tat) };
  }

  async blockedUntil(): Promise<number> {
    return Number(await this.#redis.hget(this.#key, 'blockedUntil'));
  }

  async fail(now: number, delayMs: number | undefined): Promise<BucketState> {
    const reply = await failScript.run(this.#redis, this.#key, [now, delayMs ?? -1]);
    const [blockedUntil, consecutiveFailures] = reply as [number, number];
    return { blockedUntil, consecutiveFailures };
  }

  async succeed(): Promise<void> {
    await succeedScript.run(this.#redis, this.#key, []);
  }

  async state(): Promise<BucketState> {
    const [blockedUntil, failures] = await this.#redis.hmget(this.#key, 'blockedUntil', 'failures');
    return { blockedUntil: Number(blockedUntil), consecutiveFailures: Number(failures) };
  }
}
