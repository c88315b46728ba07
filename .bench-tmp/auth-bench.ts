import { writeFile } from 'node:fs/promises';
import autocannon from 'autocannon';
import pg from 'pg';
import { freePort, startChild } from '../bench/service.js';
import { KeyStore } from '../src/auth/key-store.js';
import { connectDatabase } from '../src/db/client.js';
import { applyMigrations } from '../src/db/migrate.js';
import { startCymruWhois } from '../tests/doubles/cymru-whois.js';
import { createTestDatabase } from '../tests/support/database.js';

const db = await createTestDatabase();
const cymru = await startCymruWhois();
const handle = connectDatabase(db.url);
await applyMigrations(handle.pool);
const store = new KeyStore(handle);
const plain = (await store.create({ name: 'bench', scopes: ['lookup'] }, new Date())).token;
const rated = (await store.create({ name: 'bench-rated', scopes: ['lookup'], ratePerMinute: 1_000_000_000 }, new Date())).token;
await handle.close();
const env = { DATABASE_URL: db.url, REDIS_URL: 'redis://127.0.0.1:6379', REDIS_KEY_PREFIX: `bench-ak-${Date.now()}:`, CYMRU_WHOIS_HOST: cymru.host, CYMRU_WHOIS_PORT: String(cymru.port), LOG_LEVEL: 'warn' };
const off = await startChild({ name: 'off', script: 'dist/server.js', port: await freePort(), env: { ...env, AUTH: 'off', ROLE: 'api' } });
const keys = await startChild({ name: 'keys', script: 'dist/server.js', port: await freePort(), env: { ...env, AUTH: 'keys', ROLE: 'api' } });
const ips = Array.from({ length: 100 }, (_, i) => `45.${60 + (i % 10)}.${i}.1`);
await fetch(`${off.url}/enrich`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ips, sources: ['maxmind', 'cymru'] }) });
const record = await (await fetch(`${off.url}/ip/${ips[0]}?sources=maxmind&sources=cymru`)).json();
await writeFile('/tmp/ak-bench-record.json', JSON.stringify(record));
const bare = await startChild({ name: 'bare', script: 'bench/bare-server.ts', port: await freePort(), env: { BENCH_RECORD_FILE: '/tmp/ak-bench-record.json' } });

const byUrl = new Map([[bare.url, bare], [off.url, off], [keys.url, keys]]);
async function run(url: string, headers: Record<string, string>, seconds: number) {
  const child = byUrl.get(url)!;
  const before = await child.cpuSeconds();
  let next = 0;
  const result = await new Promise<autocannon.Result>((resolve, reject) =>
    autocannon(
      {
        url,
        connections: 10,
        duration: seconds,
        headers,
        requests: [{ method: 'GET', setupRequest: (request) => ({ ...request, path: `/ip/${ips[next++ % ips.length]}?sources=maxmind&sources=cymru` }) }],
      },
      (error, outcome) => (error ? reject(error) : resolve(outcome)),
    ),
  );
  const cpu = (await child.cpuSeconds()) - before;
  return { rps: result['2xx'] / result.duration, p99: result.latency.p99, bad: result.non2xx + result.errors, us: (cpu * 1e6) / (result['2xx'] + result.non2xx) };
}
const variants = {
  bare: () => run(bare.url, {}, 5),
  'no key (AUTH=off)': () => run(off.url, {}, 5),
  'key (AUTH=keys)': () => run(keys.url, { authorization: `Bearer ${plain}` }, 5),
  'key with a rate (AUTH=keys)': () => run(keys.url, { authorization: `Bearer ${rated}` }, 5),
};
for (const fn of Object.values(variants)) await run(fn === variants.bare ? bare.url : fn === variants['no key (AUTH=off)'] ? off.url : keys.url, fn === variants['key (AUTH=keys)'] ? { authorization: `Bearer ${plain}` } : fn === variants['key with a rate (AUTH=keys)'] ? { authorization: `Bearer ${rated}` } : {}, 2);
const rounds: Record<string, Array<{ rps: number; p99: number; bad: number; us: number }>> = {};
for (let round = 0; round < Number(process.env.ROUNDS ?? 3); round += 1) {
  for (const [name, fn] of Object.entries(variants)) (rounds[name] ??= []).push(await fn());
}
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const bareMedian = median(rounds.bare!.map((r) => r.rps));
for (const [name, results] of Object.entries(rounds)) {
  const ratios = results.map((r, i) => r.rps / rounds.bare![i]!.rps);
  console.log(
    `${name.padEnd(30)} median ${Math.round(median(results.map((r) => r.rps)))} req/s, ratio to bare (per round) ${ratios.map((x) => x.toFixed(3)).join(', ')}, median ratio ${median(ratios).toFixed(3)}, p99 ${results.map((r) => r.p99).join('/')} ms, non-2xx ${results.reduce((a, r) => a + r.bad, 0)}, CPU µs/request ${results.map((r) => r.us.toFixed(1)).join('/')}`,
  );
}
console.log(`bare median ${Math.round(bareMedian)} req/s`);
await Promise.all([off.stop(), keys.stop(), bare.stop()]);
await cymru.close();
const admin = new pg.Client({ connectionString: 'postgresql://postgres@127.0.0.1:5432/postgres' });
await admin.connect();
await admin.end();
await db.drop();
