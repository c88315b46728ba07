import { mkdir, writeFile } from 'node:fs/promises';
import Fastify from 'fastify';
import { registerApi } from '../src/app.js';
import { loadConfig } from '../src/config.js';

/** Writes the OpenAPI document the service serves at /openapi.json; it needs no database or upstream. */
export async function openApiDocument(): Promise<string> {
  const app = Fastify({ logger: false });
  await registerApi(app, loadConfig({}));
  await app.ready();
  const document = `${JSON.stringify(app.swagger(), null, 2)}\n`;
  await app.close();
  return document;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const target = new URL('../openapi/openapi.json', import.meta.url);
  await mkdir(new URL('.', target), { recursive: true });
  await writeFile(target, await openApiDocument());
  process.stdout.write(`wrote ${target.pathname}\n`);
}
