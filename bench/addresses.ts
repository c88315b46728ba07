import { parseAddress } from '../src/ip/address.js';

/** mulberry32: a small seeded generator, so every run asks for the same addresses. */
function generator(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/**
 * Disjoint lists of distinct, routable IPv4 addresses spread over the whole address space (so they fall in
 * many different prefixes, as real traffic does). IPv4 only, because GreyNoise's community API does not
 * answer for IPv6 and every address should cost every upstream one request.
 */
export function routableLists(sizes: readonly number[], seed = 20261122): string[][] {
  const next = generator(seed);
  const seen = new Set<string>();
  return sizes.map((size) => {
    const list: string[] = [];
    while (list.length < size) {
      const n = next();
      const text = `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
      const parsed = parseAddress(text);
      if (parsed.kind !== 'routable' || seen.has(parsed.ip)) continue;
      seen.add(parsed.ip);
      list.push(parsed.ip);
    }
    return list;
  });
}
