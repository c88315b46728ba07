import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Locator, type Page } from 'playwright-core';
import { ROOT } from '../../support/cli.js';

/** Debian's Chromium (`apt-get install chromium`, as .ci/run does): Playwright's own download is not used. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Whatever would make Chromium talk to Google's services by itself, off. */
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--no-first-run',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
];

/** Where the screenshots of a run go: a folder of test-output/ (kept out of git), one per test file. */
export const SCREENSHOTS = join(ROOT, 'test-output', 'browser');

export interface Browser {
  context: BrowserContext;
  page: Page;
  /** Every URL the pages asked for, in order. */
  requests: string[];
  /** What the pages logged as errors (a refused Content-Security-Policy directive among them), and threw. */
  errors: string[];
  /** Saves what the page shows (all of it, or one part) as `name`.png, and prints where. */
  screenshot(name: string, part?: Locator): Promise<string>;
  close(): Promise<void>;
}

/** A headless Chromium on a profile of its own, made for this test file and removed after it. */
export async function launchBrowser(folder: string): Promise<Browser> {
  const profile = await mkdtemp(join(tmpdir(), 'ipenrich-chromium-'));
  const shots = join(SCREENSHOTS, folder);
  await rm(shots, { recursive: true, force: true });
  await mkdir(shots, { recursive: true });
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    acceptDownloads: true,
    viewport: { width: 1280, height: 900 },
  });
  const requests: string[] = [];
  context.on('request', (request) => requests.push(request.url()));
  const errors: string[] = [];
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  page.on('pageerror', (error) => errors.push(error.message));
  let step = 0;
  return {
    context,
    page,
    requests,
    errors,
    async screenshot(name, part) {
      step += 1;
      const path = join(shots, `${String(step).padStart(2, '0')}-${name}.png`);
      await (part ? part.screenshot({ path }) : page.screenshot({ path, fullPage: true }));
      console.log(`screenshot: ${path}`);
      return path;
    },
    async close() {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}

/** The requests that went anywhere but the service under test (data: and blob: URLs stay in the page). */
export function elsewhere(requests: readonly string[], origin: string): string[] {
  return requests.filter((url) => !url.startsWith(`${origin}/`) && !url.startsWith('data:') && !url.startsWith('blob:'));
}
