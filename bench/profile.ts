import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** A stretch of the run on the monotonic clock (µs), which V8 profiles and process.hrtime share on Linux. */
export interface Window {
  name: string;
  startUs: number;
  endUs: number;
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Node names profiles CPU.<date>.<time>.<pid>.<thread>.<seq>; thread 0 is the main one (tsx's loader is another). */
const MAIN_THREAD = /^CPU\.\d+\.\d+\.\d+\.0\.\d+\.cpuprofile$/;

export const monotonicUs = (): number => Number(process.hrtime.bigint() / 1000n);

const wallOffsetUs = monotonicUs() - Date.now() * 1000;

/** A stretch known by Date.now() values (as the doubles record them), on the profile's clock; ±1 ms. */
export const wallWindow = (name: string, startMs: number, endMs: number): Window => ({
  name,
  startUs: startMs * 1000 + wallOffsetUs,
  endUs: endMs * 1000 + wallOffsetUs,
});

/** Where a frame's code lives: a package, a file of this repository, or Node/V8 itself. */
function owner(url: string, functionName: string): string {
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg?.[1]) return pkg[1];
  const local = /\/((?:src|dist|bench|tests)\/.+)$/.exec(url);
  if (local?.[1]) return local[1];
  return url.startsWith('node:') ? 'node internals' : url;
}

function frameName(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const file = url.split('/').slice(-2).join('/');
  return `${functionName || '(anonymous)'} ${file}:${lineNumber + 1}`;
}

function top(totals: Map<string, number>, count: number, all: number): string {
  return [...totals]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([name, us]) => `${((us / all) * 100).toFixed(1)}% ${name}`)
    .join('; ');
}

/** The newest main-thread .cpuprofile in dir, summarized per window: CPU share by owner, the hottest
 * functions (self time) and the service's own functions with what they call (inclusive time).
 */
export async function summarizeProfile(dir: string, windows: readonly Window[], count = 10): Promise<string[]> {
  const files = await Promise.all(
    (await readdir(dir)).filter((f) => MAIN_THREAD.test(f)).map(async (f) => ({ f, at: (await stat(join(dir, f))).mtimeMs })),
  );
  const newest = files.sort((a, b) => b.at - a.at)[0];
  if (!newest) return [`no main-thread .cpuprofile in ${dir}`];
  const profile = JSON.parse(await readFile(join(dir, newest.f), 'utf8')) as CpuProfile;
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const parents = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parents.set(child, node.id);
  /** This repository's functions on the sample's stack, each once however deep the recursion. */
  const ownFrames = (id: number): Set<string> => {
    const frames = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parents.get(at)) {
      const node = nodes.get(at);
      if (node && owner(node.callFrame.url, node.callFrame.functionName).match(/^(src|dist)\//)) frames.add(frameName(node));
    }
    return frames;
  };
  const lines = [`profile ${join(dir, newest.f)} (shares of each window's sampled time; "(idle)" is the event loop waiting)`];
  for (const window of windows) {
    const byOwner = new Map<string, number>();
    const byFunction = new Map<string, number>();
    const inclusive = new Map<string, number>();
    let at = profile.startTime;
    let total = 0;
    profile.samples.forEach((id, index) => {
      const delta = profile.timeDeltas[index] ?? 0;
      at += delta;
      if (at < window.startUs || at > window.endUs) return;
      const node = nodes.get(id);
      if (!node) return;
      total += delta;
      const who = owner(node.callFrame.url, node.callFrame.functionName);
      byOwner.set(who, (byOwner.get(who) ?? 0) + delta);
      if (who === '(idle)') return;
      byFunction.set(frameName(node), (byFunction.get(frameName(node)) ?? 0) + delta);
      for (const frame of ownFrames(id)) inclusive.set(frame, (inclusive.get(frame) ?? 0) + delta);
    });
    if (total === 0) {
      lines.push(`${window.name}: no samples`);
      continue;
    }
    lines.push(`${window.name} (${(total / 1000).toFixed(0)} ms sampled) by owner: ${top(byOwner, count, total)}`);
    lines.push(`${window.name} hottest: ${top(byFunction, count, total)}`);
    lines.push(`${window.name} service code, inclusive: ${top(inclusive, count, total)}`);
  }
  return lines;
}
