import { describe, expect, it } from 'vitest';
import { parseRetryAfter } from '../../src/limiter/retry-after.js';

const NOW = Date.UTC(2026, 0, 1, 12, 0, 0);

describe('parseRetryAfter', () => {
  it('reads delta-seconds', () => {
    expect(parseRetryAfter('120', NOW)).toBe(120_000);
    expect(parseRetryAfter(' 0 ', NOW)).toBe(0);
    expect(parseRetryAfter('1.5', NOW)).toBe(1_500);
  });

  it('reads all three HTTP-date forms as GMT', () => {
    expect(parseRetryAfter('Thu, 01 Jan 2026 12:02:00 GMT', NOW)).toBe(120_000);
    expect(parseRetryAfter('Thursday, 01-Jan-26 12:02:00 GMT', NOW)).toBe(120_000);
    expect(parseRetryAfter('Thu Jan  1 12:02:00 2026', NOW)).toBe(120_000);
  });

  it('takes the first of repeated headers', () => {
    expect(parseRetryAfter(['30', '90'], NOW)).toBe(30_000);
  });

  it('clamps to between now and one hour', () => {
    expect(parseRetryAfter('86400', NOW)).toBe(3_600_000);
    expect(parseRetryAfter('Thu, 01 Jan 2026 11:00:00 GMT', NOW)).toBe(0);
    expect(parseRetryAfter('Fri, 01 Jan 2027 12:00:00 GMT', NOW)).toBe(3_600_000);
  });

  it('gives undefined for an absent or unusable value', () => {
    expect(parseRetryAfter(undefined, NOW)).toBeUndefined();
    expect(parseRetryAfter('', NOW)).toBeUndefined();
    expect(parseRetryAfter([], NOW)).toBeUndefined();
    expect(parseRetryAfter('-5', NOW)).toBeUndefined();
    expect(parseRetryAfter('soon', NOW)).toBeUndefined();
    expect(parseRetryAfter('2026-01-01T12:02:00Z', NOW)).toBeUndefined();
  });
});
