import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { registerApi } from '../../src/app.js';
import { loadConfig, type Config } from '../../src/config.js';
import { WEB_ROOT } from '../../src/routes/web.js';
import { buildDist } from '../support/cli.js';

/* How the page and the API reference are served, and by which roles: the HTTP contract alone, no backend. */

let app: FastifyInstance | undefined;

async function contract(role: Config['ROLE']): Promise<FastifyInstance> {
  app = Fastify({ logger: false });
  await registerApi(app, loadConfig({}, { ROLE: role }));
  await app.ready();
  return app;
}

beforeAll(async () => {
  await buildDist();
}, 120_000);

afterEach(async () => {
  await app?.close();
  app = undefined;
});

describe('the web page', () => {
  it('is served at / with a policy that lets it ask no other host, and its hashed assets are cached for good', async () => {
    const api = await contract('all');
    const page = await api.inject({ method: 'GET', url: '/' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.body).toBe(await readFile(join(WEB_ROOT, 'index.html'), 'utf8'));
    expect(page.headers['content-security-policy']).toContain("default-src 'self'");
    expect(page.headers['cache-control']).toBe('no-cache');
    const script = /src="(\/assets\/[^"]+\.js)"/.exec(page.body)?.[1];
    expect(script).toBeDefined();
    const asset = await api.inject({ method: 'GET', url: script! });
    expect(asset.statusCode).toBe(200);
    expect(asset.headers['cache-control']).toBe('public, max-age=31536000, immutable');
  });

  it('answers a file it does not have as problem+json, like any unknown path', async () => {
    const api = await contract('all');
    const missing = await api.inject({ method: 'GET', url: '/assets/nothing-here.js' });
    expect(missing.statusCode).toBe(404);
    expect(missing.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(missing.json()).toMatchObject({ code: 'not-found', detail: 'no route for GET /assets/nothing-here.js' });
  });

  it('and the API reference are served where the API is, never by a worker', async () => {
    const api = await contract('api');
    expect((await api.inject({ method: 'GET', url: '/' })).statusCode).toBe(200);
    expect((await api.inject({ method: 'GET', url: '/docs' })).statusCode).toBe(200);
    await api.close();
    const worker = await contract('worker');
    for (const url of ['/', '/docs', '/docs/json']) {
      const answer = await worker.inject({ method: 'GET', url });
      expect(answer.statusCode, url).toBe(404);
      expect(answer.json(), url).toMatchObject({ code: 'not-found' });
    }
  });
});

describe('the API reference', () => {
  it('renders the very document served at /openapi.json, with Swagger UI from the package itself', async () => {
    const api = await contract('all');
    const rendered = await api.inject({ method: 'GET', url: '/docs/json' });
    expect(rendered.json()).toEqual((await api.inject({ method: 'GET', url: '/openapi.json' })).json());
    const index = await api.inject({ method: 'GET', url: '/docs/' });
    expect(index.headers['content-security-policy']).toContain("default-src 'self'");
    const assets = [...index.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((match) => match[1]!);
    expect(assets.length).toBeGreaterThan(3);
    for (const asset of assets) {
      expect(asset).toMatch(/^\.\/static\//);
      expect((await api.inject({ method: 'GET', url: `/docs/${asset.slice(2)}` })).statusCode, asset).toBe(200);
    }
  });
});
