import { describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { ManualClock } from '../support/manual-clock.js';

describe('ManualClock', () => {
  it('wakes sleepers at their own moment and in order, and lets woken code sleep again within one advance', async () => {
    const clock = new ManualClock(1_000);
    const woke: Array<[string, number]> = [];
    const sleepThenRecord = async (name: string, ms: number) => {
      await clock.sleep(ms);
      woke.push([name, clock.now()]);
    };
    void sleepThenRecord('b', 300);
    void sleepThenRecord('a', 100);
    void sleepThenRecord('c', 300);
    void (async () => {
      await clock.sleep(50);
      woke.push(['d1', clock.now()]);
      await clock.sleep(100);
      woke.push(['d2', clock.now()]);
    })();
    await clock.advance(250);
    expect(woke).toEqual([
      ['d1', 1_050],
      ['a', 1_100],
      ['d2', 1_150],
    ]);
    expect(clock.now()).toBe(1_250);
    await clock.advance(50);
    expect(woke.slice(3)).toEqual([
      ['b', 1_300],
      ['c', 1_300],
    ]);
  });

  it('rejects an aborted sleep with the reason and forgets it', async () => {
    const clock = new ManualClock();
    const controller = new AbortController();
    const sleeping = clock.sleep(1_000, controller.signal);
    controller.abort(new Error('stop'));
    await expect(sleeping).rejects.toThrow('stop');
    expect(clock.sleeping).toBe(0);
  });

  it('calls a scheduled function at its moment, in turn with sleeps, and never once it is cancelled', async () => {
    const clock = new ManualClock(1_000);
    const calls: Array<[string, number]> = [];
    clock.schedule(200, () => calls.push(['scheduled', clock.now()]));
    const cancel = clock.schedule(100, () => calls.push(['cancelled', clock.now()]));
    void clock.sleep(200).then(() => calls.push(['slept', clock.now()]));
    expect(clock.sleeping).toBe(3);
    cancel();
    expect(clock.sleeping).toBe(2);
    await clock.advance(300);
    expect(calls).toEqual([
      ['scheduled', 1_200],
      ['slept', 1_200],
    ]);
  });
});

describe('systemClock', () => {
  it('sleeps in real time and can be aborted', async () => {
    const started = Date.now();
    await systemClock.sleep(20);
    expect(Date.now() - started).toBeGreaterThanOrEqual(19);
    const controller = new AbortController();
    const sleeping = systemClock.sleep(10_000, controller.signal);
    controller.abort(new Error('enough'));
    await expect(sleeping).rejects.toThrow('enough');
  });

  it('calls a scheduled function after its delay, and never once it is cancelled', async () => {
    const calls: string[] = [];
    const cancel = systemClock.schedule(5, () => calls.push('cancelled'));
    cancel();
    const started = Date.now();
    await new Promise<void>((resolve) => systemClock.schedule(20, resolve));
    expect(Date.now() - started).toBeGreaterThanOrEqual(19);
    expect(calls).toEqual([]);
  });
});
