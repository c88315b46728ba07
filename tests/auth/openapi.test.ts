import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import SwaggerParser from '@apidevtools/swagger-parser';
import createClient from 'openapi-fetch';
import openapiTS, { astToString, COMMENT_HEADER, type OpenAPI3 } from 'openapi-typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../support/app.js';
import type { paths } from './openapi-paths.js';
import { createKey } from './support.js';

interface Operation {
  security?: Array<Record<string, string[]>>;
  responses: Record<string, unknown>;
}

let harness: Harness;
let document: OpenAPI3;
let operations: Record<string, Record<string, Operation>>;
beforeAll(async () => {
  harness = await startHarness({ config: { AUTH: 'keys' } });
  document = (await harness.app.inject({ method: 'GET', url: '/openapi.json' })).json();
  operations = document.paths as typeof operations;
});
afterAll(async () => harness.close());

describe('the OpenAPI security schemes', () => {
  it('validates, with the key schemes declared per operation and the answers to a missing key, scope or limit', async () => {
    await expect(SwaggerParser.validate(structuredClone(document) as never)).resolves.toBeDefined();
    expect(Object.keys(document.components?.securitySchemes ?? {})).toEqual(['bearerKey', 'headerKey', 'metricsToken']);
    const keyed = ['post /enrich', 'get /ip/{addr}', 'delete /ip/{addr}', 'post /jobs', 'get /jobs', 'get /jobs/{id}', 'get /jobs/{id}/results', 'delete /jobs/{id}'];
    for (const name of keyed) {
      const [method, path] = name.split(' ') as [string, string];
      const operation = operations[path]![method]!;
      expect(operation.security, name).toEqual([{ bearerKey: [] }, { headerKey: [] }]);
      expect(Object.keys(operation.responses), name).toEqual(expect.arrayContaining(['401', '403', '429']));
    }
    expect(operations['/metrics']!.get!.security).toEqual([{ metricsToken: [] }, {}]);
    expect(operations['/healthz']!.get!.security).toBeUndefined();
    expect(operations['/readyz']!.get!.security).toBeUndefined();
  });

  it('matches the committed client types (npm run openapi writes both)', async () => {
    const generated = COMMENT_HEADER + astToString(await openapiTS(structuredClone(document)));
    expect(generated).toBe(await readFile(new URL('./openapi-paths.d.ts', import.meta.url), 'utf8'));
  });

  it('gives a client generated from it, typed by its paths, what it asks with a key, and the problem without one', async () => {
    await harness.app.listen({ host: '127.0.0.1', port: 0 });
    const baseUrl = `http://127.0.0.1:${(harness.app.server.address() as AddressInfo).port}`;
    const { token } = await createKey(harness.app, { name: 'client', scopes: ['lookup'] });
    const client = createClient<paths>({ baseUrl, headers: { authorization: `Bearer ${token}` } });
    const { data, response } = await client.GET('/ip/{addr}', { params: { path: { addr: '81.2.69.1' } } });
    expect(response.status).toBe(200);
    const record: paths['/ip/{addr}']['get']['responses'][200]['content']['application/json'] | undefined = data;
    expect(record).toMatchObject({ ip: '81.2.69.1', status: 'ok', asn: { number: 20712 } });

    const anonymous = createClient<paths>({ baseUrl });
    const refused = await anonymous.GET('/ip/{addr}', { params: { path: { addr: '81.2.69.1' } } });
    expect(refused.response.status).toBe(401);
    expect(refused.error).toMatchObject({ code: 'unauthorized' });
  });
});
