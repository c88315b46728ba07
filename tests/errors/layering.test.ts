import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

/** The HTTP edge: the app, its routes, plugins and contract, and the problem+json modules. */
const HTTP_LAYER = [/^app\.ts$/, /^server\.ts$/, /^routes\//, /^plugins\//, /^schemas\//, /^errors\/(handlers|problem|registry)\.ts$/, /^generated\//];

/** What only the HTTP edge may know: answering problems, routes, and Fastify beyond its logger type. */
const HTTP_MODULES = /\/(errors\/(handlers|problem|registry)|routes\/[^']*)\.js$/;
const FASTIFY_ALLOWED = new Set(['FastifyBaseLogger']);

async function sourceFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries
    .filter((entry) => entry.isFile() && entry.name.endsWith('.ts'))
    .map((entry) => relative(SRC, join(entry.parentPath, entry.name)));
}

function httpImports(source: string): string[] {
  const found: string[] = [];
  for (const [statement, names, from] of source.matchAll(/^import\s+(?:type\s+)?([\s\S]*?)\s+from\s+'([^']+)';/gm)) {
    if (HTTP_MODULES.test(from!)) found.push(statement);
    if (from === 'fastify') {
      const named = /^\{([\s\S]*)\}$/.exec(names!.trim());
      const imported = named ? named[1]!.split(',').map((name) => name.replace(/^\s*type\s+/, '').trim()).filter(Boolean) : [names!];
      if (imported.some((name) => !FASTIFY_ALLOWED.has(name))) found.push(statement);
    }
  }
  return found;
}

describe('layering', () => {
  it('keeps HTTP out of the layers below the routes: storage and sources throw domain errors', async () => {
    const offenders: Record<string, string[]> = {};
    for (const file of await sourceFiles(SRC)) {
      if (HTTP_LAYER.some((pattern) => pattern.test(file))) continue;
      const imports = httpImports(await readFile(join(SRC, file), 'utf8'));
      if (imports.length > 0) offenders[file] = imports;
    }
    expect(offenders).toEqual({});
  });
});
