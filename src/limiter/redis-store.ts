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

/**
 * Every moment in Redis is on Redis's clock (TIME, read inside each script), so that replicas whose clocks
 * disagree still share one budget: a replica sends the moments it is given as offsets from its own now, the
 * script anchors them at its TIME, and answers offsets that the replica adds to its now again. What a
 * replica's clock is off by then cancels out; what is left is the time a call takes to reach Redis.
 * Redis 7 replicates a script's writes, not the script, so TIME in a writing script is safe.
 */
const NOW = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
`;

// Numbers are written with %.17g: Redis's own number-to-string conversion keeps 14 digits, which would
// round epoch-millisecond timestamps with a fractional interval and let the budget drift. Waits are whole
// milliseconds from now, rounded up, as the in-process store's moments are.
const RESERVE = `${NOW}
local notBefore = tonumber(ARGV[1])
local interval, tolerance = tonumber(ARGV[2]), tonumber(ARGV[3])
local fields = redis.call('HMGET', KEYS[1], 'tat', 'blockedUntil', 'failures')
local tat = tonumber(fields[1]) or now
local floor = tonumber(ARGV[4])
-- A floor that raises the bucket is kept even when nothing is reserved: the caller sends it only once.
local changed = false
if floor and now + floor > tat then
  tat = now + floor
  changed = true
end
local blocked = tonumber(fields[2]) or 0
local reply = {math.max(0, math.ceil(blocked - now)), tonumber(fields[3]) or 0, ''}
for i = 5, #ARGV do
  local wait = math.ceil(math.max(0, tat - tolerance - now, blocked - now, notBefore))
  if wait > tonumber(ARGV[i]) then
    reply[#reply + 1] = 0
  else
    tat = math.max(tat, now + wait) + interval
    changed = true
    reply[#reply + 1] = 1
  end
  reply[#reply + 1] = wait
end
if changed then
  redis.call('HSET', KEYS[1], 'tat', string.format('%.17g', tat))
  redis.call('PEXPIRE', KEYS[1], math.ceil(math.max(tat, blocked) - now) + ${IDLE_TTL_MS})
end
reply[3] = string.format('%.17g', tat - now)
return reply
`;

const FAIL = `${NOW}
local delay = tonumber(ARGV[1])
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
return {math.ceil(blocked - now), failures}
`;

const STATE = `${NOW}
local fields = redis.call('HMGET', KEYS[1], 'blockedUntil', 'failures')
return {math.max(0, math.ceil((tonumber(fields[1]) or 0) - now)), tonumber(fields[2]) or 0}
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
const stateScript = new LuaScript(STATE);
const succeedScript = new LuaScript(SUCCEED);

/** A block `wait` ms from `now`; none (0) when it has ended. */
const blockFrom = (now: number, wait: number) => (wait > 0 ? now + wait : 0);

/** The bucket of one upstream in one Redis hash, so that every replica draws on the same budget. */
export class RedisBucketStore implements BucketStore {
  readonly #redis: Redis;
  readonly #key: string;
  readonly #policy: BucketPolicy;
  /** The latest `tat` this store answered, on the caller's clock. */
  #answeredTat = -Infinity;

  constructor(redis: Redis, key: string, policy: BucketPolicy) {
    this.#redis = redis;
    this.#key = key;
    this.#policy = policy;
  }

  async reserve(now: number, deadlines: readonly number[], notBefore: number, tatFloor: number): Promise<Reservations> {
    // Redis keeps every tat it answered (the script writes one a floor raised), so the floor is sent only
    // when it holds more: what the in-process store granted during an outage. Sent on every call, it would
    // carry the error of each conversion (the difference in how long two calls took to reach Redis) into the
    // bucket, never back, call after call.
    const floor = tatFloor > this.#answeredTat ? tatFloor - now : '';
    const reply = (await reserveScript.run(this.#redis, this.#key, [
      notBefore - now,
      this.#policy.intervalMs,
      this.#policy.toleranceMs,
      floor,
      ...deadlines.map((deadline) => deadline - now),
    ])) as [number, number, string, ...number[]];
    const [blocked, consecutiveFailures, tatFromNow] = reply;
    const moments: Reservation[] = [];
    for (let i = 3; i < reply.length; i += 2) {
      moments.push({ granted: reply[i] === 1, at: now + ((reply[i + 1] as number | undefined) ?? 0) });
    }
    const tat = now + Number(tatFromNow);
    this.#answeredTat = Math.max(this.#answeredTat, tat);
    return { blockedUntil: blockFrom(now, blocked), consecutiveFailures, moments, tat };
  }

  async blockedUntil(now: number): Promise<number> {
    return (await this.state(now)).blockedUntil;
  }

  async fail(now: number, delayMs: number | undefined): Promise<BucketState> {
    const reply = await failScript.run(this.#redis, this.#key, [delayMs ?? -1]);
    const [blocked, consecutiveFailures] = reply as [number, number];
    return { blockedUntil: blockFrom(now, blocked), consecutiveFailures };
  }

  async succeed(): Promise<void> {
    await succeedScript.run(this.#redis, this.#key, []);
  }

  async state(now: number): Promise<BucketState> {
    const [blocked, consecutiveFailures] = (await stateScript.run(this.#redis, this.#key, [])) as [number, number];
    return { blockedUntil: blockFrom(now, blocked), consecutiveFailures };
  }
}
