import { readdir, readFile, rm, mkdir } from 'node:fs/promises';
import autocannon from 'autocannon';
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
const token = (await new KeyStore(handle).create({ name: 'bench', scopes: ['lookup'] }, new Date())).token;
await handle.close();
const env = { DATABASE_URL: db.url, REDIS_URL: 'redis://127.0.0.1:6379', REDIS_KEY_PREFIX: `bench-ak-${Date.now()}:`, CYMRU_WHOIS_HOST: cymru.host, CYMRU_WHOIS_PORT: String(cymru.port), LOG_LEVEL: 'warn' };
const ips = Array.from({ length: 100 }, (_, i) => `45.${60 + (i % 10)}.${i}.1`);
for (const mode of ['off', 'keys']) {
  const dir = `/tmp/ak-prof-${mode}`;
  await rm(dir, { recursive: true, force: true }); await mkdir(dir);
  const child = await startChild({ name: mode, script: 'dist/server.js', port: await freePort(), env: { ...env, AUTH: mode, ROLE: 'api' }, nodeFlags: ['--cpu-prof', `--cpu-prof-dir=${dir}`] });
  const headers = mode === 'keys' ? { authorization: `Bearer ${token}` } : {};
  await fetch(`${child.url}/enrich`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ ips, sources: ['maxmind', 'cymru'] }) });
  let next = 0;
  await new Promise((resolve, reject) => autocannon({ url: child.url, connections: 10, duration: 6, headers, requests: [{ method: 'GET', setupRequest: (r) => ({ ...r, path: `/ip/${ips[next++ % ips.length]}?sources=maxmind&sources=cymru` }) }] }, (e, o) => (e ? reject(e) : resolve(o))));
  await child.stop();
  const file = (await readdir(dir))[0]!;
  const profile = JSON.parse(await readFile(`${dir}/${file}`, 'utf8')) as { nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>; samples: number[]; timeDeltas: number[] };
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  profile.samples.forEach((id, i) => {
    const n = byId.get(id)!;
    const key = `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.replace(/.*node_modules\//, '').replace(/.*wt-access-keys\//, '')}:${n.callFrame.lineNumber}`;
    self.set(key, (self.get(key) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const idle = self.get('(idle) :-1') ?? 0;
  console.log(`== ${mode}: busy ${((total - idle) / 1e6).toFixed(2)} s`);
  for (const [k, v] of [...self].filter(([k]) => !k.startsWith('(idle)')).sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`${(v / 1000).toFixed(0).padStart(6)} ms ${k}`);
}
await cymru.close();
await db.drop();
