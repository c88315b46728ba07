import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import { expect } from 'vitest';
import { API_SCHEMAS } from '../../src/app.js';

const ajv = new Ajv({ allErrors: true, strict: false });
addFormats.default(ajv);
for (const schema of API_SCHEMAS) ajv.addSchema(schema);

/** Asserts that a response body matches the schema the OpenAPI document promises for it. */
export function expectToMatchSchema(schemaId: string, value: unknown): void {
  const validate = ajv.getSchema(schemaId);
  if (!validate) throw new Error(`no schema ${schemaId}`);
  const valid = validate(value);
  expect(valid ? [] : validate.errors, `${schemaId}: ${JSON.stringify(value).slice(0, 300)}`).toEqual([]);
}
