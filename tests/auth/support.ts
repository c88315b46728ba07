import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { expect } from 'vitest';
import { KeyStore, type KeySpec } from '../../src/auth/key-store.js';
import { expectToMatchSchema } from '../support/contract.js';

/** A key made as `ip-enrich keys create` makes it, on the app's own database. */
export async function createKey(app: FastifyInstance, spec: KeySpec): Promise<{ id: string; prefix: string; token: string }> {
  const { key, token } = await new KeyStore(app.database).create(spec, new Date());
  return { id: key.id, prefix: key.prefix, token };
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

export async function asKey(app: FastifyInstance, token: string | undefined, request: InjectOptions): Promise<LightMyRequestResponse> {
  return app.inject({ ...request, headers: { ...request.headers, ...(token ? bearer(token) : {}) } });
}

export function expectProblem(response: LightMyRequestResponse, status: number, code: string): { detail: string; instance?: string } {
  expect(response.statusCode, response.body).toBe(status);
  expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
  const problem = response.json<{ code: string; detail: string; instance?: string }>();
  expectToMatchSchema('Problem', problem);
  expect(problem.code).toBe(code);
  return problem;
}
