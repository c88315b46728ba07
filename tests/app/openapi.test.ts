import { readdir, readFile } from 'node:fs/promises';
import SwaggerParser from '@apidevtools/swagger-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../support/app.js';

let harness: Harness;
beforeAll(async () => {
  harness = await startHarness();
});
afterAll(async () => harness.close());

interface Schema {
  required?: string[];
  properties?: Record<string, Schema & { anyOf?: Schema[] }>;
}

describe('GET /openapi.json', () => {
  it('serves exactly the committed openapi/openapi.json (regenerate with npm run openapi)', async () => {
    const served = (await harness.app.inject({ method: 'GET', url: '/openapi.json' })).json<unknown>();
    const committed = JSON.parse(await readFile(new URL('../../openapi/openapi.json', import.meta.url), 'utf8')) as unknown;
    expect(served).toEqual(committed);
  });

  it('is a valid OpenAPI 3.1 document', async () => {
    const document = (await harness.app.inject({ method: 'GET', url: '/openapi.json' })).json<object>();
    await expect(SwaggerParser.validate(structuredClone(document) as never)).resolves.toBeDefined();
  });

  it('marks always-present record fields required and nullable ones nullable, so generated clients are typed', async () => {
    const document = (await harness.app.inject({ method: 'GET', url: '/openapi.json' })).json<{
      components: { schemas: Record<string, Schema> };
    }>();
    const record = document.components.schemas.IpRecord!;
    expect(record.required).toEqual(
      expect.arrayContaining(['ip', 'input', 'status', 'asn', 'geo', 'greynoise', 'dshield', 'sources', 'updatedAt']),
    );
    expect(record.properties!.asn!.anyOf).toEqual([{ $ref: '#/components/schemas/Asn' }, { type: 'null' }]);
    expect(record.properties!.error!.anyOf).toBeUndefined();
    expect(record.required).not.toContain('error');
  });
});

describe('the contract\'s sources', () => {
  it('keeps schemas in src/schemas: no route imports another route', async () => {
    const dir = new URL('../../src/routes/', import.meta.url);
    const files = (await readdir(dir)).filter((name) => name.endsWith('.ts'));
    const sources = new Map(await Promise.all(files.map(async (name) => [name, await readFile(new URL(name, dir), 'utf8')] as const)));
    // A route is a plugin, its module's default export; problems.ts and serialized.ts are helpers for all of them.
    const routes = files.filter((name) => /^export default /m.test(sources.get(name)!));
    expect(routes.length).toBeGreaterThan(1);
    const imported = routes.flatMap((name) =>
      [...sources.get(name)!.matchAll(/from '\.\/([^']+)\.js'/g)]
        .map(([, target]) => `${target}.ts`)
        .filter((target) => routes.includes(target))
        .map((target) => `${name} imports ${target}`),
    );
    expect(imported).toEqual([]);
  });
});
