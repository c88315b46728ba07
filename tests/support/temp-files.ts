import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';

/** A folder of its own for one test file, made before its tests and removed after them. */
export function tempFiles(prefix: string) {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), prefix));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  return {
    /** The path of `name` in the folder. */
    path: (name = '') => join(dir, name),
    /** Writes `name` with `content` and answers its path. */
    file: async (name: string, content: string | Buffer): Promise<string> => {
      const path = join(dir, name);
      await writeFile(path, content);
      return path;
    },
  };
}
