import { describe, expect, it } from 'vitest';
import { initialProgress, maskOf, PASS_BITS, SOURCE_BITS } from '../../src/jobs/model.js';
import { describePhase, settleChunk } from '../../src/jobs/progress.js';
import { jobView } from '../../src/jobs/view.js';
import type { JobRow } from '../../src/jobs/store.js';

const ALL = maskOf(['maxmind', 'cymru', 'greynoise', 'dshield']);
const started = new Date('2026-12-01T10:00:00.000Z');
const ended = new Date('2026-12-01T10:00:02.000Z');

describe('settling a chunk', () => {
  it('leaves each address the sources that were rate limited, with the moment to ask again', () => {
    const progress = initialProgress(2, ['maxmind', 'cymru', 'greynoise', 'dshield']);
    const bulkDone = ALL & ~PASS_BITS.bulk;
    const { addresses, finished } = settleChunk(
      progress,
      [
        {
          ip: '45.1.0.1',
          due: bulkDone,
          outcomes: { greynoise: { status: 'ok', data: null }, dshield: { status: 'rate_limited', retryAt: '2026-12-01T10:05:00.000Z' } },
        },
        { ip: '45.1.0.2', due: bulkDone, outcomes: { greynoise: { status: 'error', error: 'HTTP 500' }, dshield: { status: 'not_found', data: null } } },
      ],
      PASS_BITS.limited,
      ALL,
      started,
      ended,
    );
    expect(addresses).toEqual([
      { ip: '45.1.0.1', due: SOURCE_BITS.dshield, outcomes: null, retryAt: Date.parse('2026-12-01T10:05:00.000Z') },
      // An error is final, and kept: the stored record does not show it.
      { ip: '45.1.0.2', due: 0, outcomes: { greynoise: { status: 'error', error: 'HTTP 500' } }, retryAt: undefined },
    ]);
    expect(progress.greynoise).toMatchObject({ done: 2, asked: 2, finishedAt: ended.toISOString(), waitingUntil: null });
    expect(progress.dshield).toMatchObject({ done: 1, asked: 1, finishedAt: null, waitingUntil: '2026-12-01T10:05:00.000Z' });
    expect(progress.persist.done).toBe(1);
    // The addresses had been through the bulk pass, where they were collected.
    expect(progress.collect.done).toBe(0);
    expect(finished).toEqual(['greynoise']);
  });

  it('collects an address in its first chunk only, and counts a bulk query per chunk that asked Team Cymru', () => {
    const progress = initialProgress(2, ['maxmind', 'cymru']);
    const mask = maskOf(['maxmind', 'cymru']);
    const outcomes = (cymru: 'ok' | 'skipped') => ({
      maxmind: { status: 'ok' as const, data: null },
      cymru: cymru === 'ok' ? { status: 'ok' as const, data: null } : { status: 'skipped' as const, reason: 'MaxMind knows the ASN' },
    });
    const { addresses } = settleChunk(
      progress,
      [
        { ip: '45.1.0.1', due: mask, outcomes: outcomes('ok') },
        { ip: '81.2.69.160', due: mask, outcomes: outcomes('skipped') },
      ],
      PASS_BITS.bulk,
      mask,
      started,
      ended,
    );
    expect(addresses.map((address) => [address.due, address.outcomes])).toEqual([
      [0, null],
      [0, { cymru: { status: 'skipped', reason: 'MaxMind knows the ASN' } }],
    ]);
    expect(progress.collect).toMatchObject({ done: 2, startedAt: started.toISOString(), finishedAt: ended.toISOString() });
    expect(progress.cymru).toMatchObject({ done: 2, asked: 1, batches: 1 });
    expect(describePhase('cymru', progress.cymru)).toBe('cymru 2/2 addresses, 1 batches');
  });
});

describe('a job as shown', () => {
  const row = (progress: JobRow['progress'], status = 'running'): JobRow =>
    ({
      id: '6c9b8ba1-660d-431f-9d48-8cf323b41f75',
      kind: 'list',
      status,
      label: null,
      sources: ['maxmind', 'cymru', 'greynoise', 'dshield'],
      refresh: false,
      total: 100,
      unique: 100,
      invalid: 0,
      bogon: 0,
      progress,
      error: null,
      createdAt: started,
      startedAt: started,
      finishedAt: null,
    }) as unknown as JobRow;

  it('estimates the time left from the bulk pace and the slowest rate limit, and says which source waits for a block', () => {
    const progress = initialProgress(100, ['maxmind', 'cymru', 'greynoise', 'dshield']);
    for (const phase of ['collect', 'maxmind', 'cymru'] as const) {
      Object.assign(progress[phase], { done: 100, startedAt: started.toISOString(), finishedAt: ended.toISOString() });
    }
    // GreyNoise has half its addresses done, having asked for half of those; DShield none, and is blocked.
    Object.assign(progress.greynoise, { done: 50, asked: 25, startedAt: started.toISOString() });
    Object.assign(progress.dshield, { done: 0, startedAt: started.toISOString() });
    const now = Date.parse('2026-12-01T10:01:00.000Z');
    const view = jobView(row(progress as never), now, {
      blockedUntil: { greynoise: null, dshield: now + 30_000 },
      rate: { greynoise: 1, dshield: 2 },
    });
    expect(view.phases.greynoise).toMatchObject({ state: 'running' });
    expect(view.phases.dshield).toMatchObject({ state: 'waiting', waitingUntil: new Date(now + 30_000).toISOString() });
    // DShield: 100 addresses at 2/s after a 30 s block; GreyNoise: 50 left, half of them asked, at 1/s.
    expect(view.etaSeconds).toBe(80);
    expect(jobView(row(progress as never, 'cancelled'), now, { blockedUntil: { greynoise: null, dshield: null }, rate: { greynoise: 1, dshield: 1 } }))
      .toMatchObject({ etaSeconds: null, phases: { dshield: { state: 'stopped' }, collect: { state: 'done' } } });
  });
});
