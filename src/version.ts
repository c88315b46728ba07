import { readFileSync } from 'node:fs';

// src/version.ts and dist/version.js both sit one level below the package root.
const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  name: string;
  version: string;
};

export const PRODUCT = manifest.name;
export const VERSION = manifest.version;
