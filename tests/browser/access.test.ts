import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey } from '../auth/support.js';
import { listenOnLoopback, startHarness, type Harness } from '../support/app.js';
import { buildDist } from '../support/cli.js';
import { launchBrowser, type Browser } from './support/browser.js';

/*
 * The page with access control on (AUTH=keys), in Debian's headless Chromium: the page itself loads without a
 * key, asks for one when the API answers 401, shows the 401's detail for a wrong key, and keeps the right key
 * for the tab only.
 */

let harness: Harness;
let browser: Browser;
let origin: string;
let token: string;

/** Evaluated in the page (the tests are compiled without the DOM's types). */
const STORED_KEY = "sessionStorage.getItem('ip-enrich:api-key')";

beforeAll(async () => {
  await buildDist();
  harness = await startHarness({ config: { AUTH: 'keys' } });
  ({ token } = await createKey(harness.app, { name: 'analyst', scopes: ['lookup', 'jobs'] }));
  origin = await listenOnLoopback(harness);
  browser = await launchBrowser('access');
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await harness?.close();
});

describe('the page with access control on', () => {
  it('asks for a key on the first 401, and names what the service said', async () => {
    const { page } = browser;
    await page.goto(`${origin}/`);
    await page.getByLabel('IP address').fill('81.2.69.160');
    await page.getByRole('button', { name: 'Look up' }).click();
    const dialog = page.locator('#key-dialog');
    await expect.poll(() => dialog.isVisible()).toBe(true);
    expect(await page.locator('#key-error').textContent()).toMatch(/^The service asks for an API key: .+/);
    await browser.screenshot('key-asked', dialog);
  });

  it("shows the 401's detail for a wrong key and keeps asking", async () => {
    const { page } = browser;
    await page.locator('#key-input').fill('ipe_wrongkey_0000000000000000000000000000000000000000000');
    await page.locator('#key-submit').click();
    const problem = await harness.app.inject({ method: 'GET', url: '/ip/81.2.69.160', headers: { authorization: 'Bearer ipe_wrongkey_0000000000000000000000000000000000000000000' } });
    expect(problem.statusCode).toBe(401);
    const { title, detail } = problem.json<{ title: string; detail: string }>();
    await expect.poll(() => page.locator('#key-error').textContent()).toBe(`${title}: ${detail}`);
    expect(await page.locator('#key-dialog').isVisible()).toBe(true);
    expect(await page.evaluate<string | null>(STORED_KEY)).toBeNull();
    await browser.screenshot('key-refused', page.locator('#key-dialog'));
  });

  it('answers with the right key, keeps it in the tab only, and sends it as a Bearer header', async () => {
    const { page } = browser;
    const sent: (string | undefined)[] = [];
    const watch = (request: { url(): string; headers(): Record<string, string> }) => {
      if (request.url().includes('/ip/81.2.69.160')) sent.push(request.headers()['authorization']);
    };
    page.on('request', watch);
    await page.locator('#key-input').fill(token);
    await page.locator('#key-submit').click();
    await expect.poll(() => page.locator('#lookup-result .record .asn').textContent()).toBe('AS20712 Andrews & Arnold Ltd');
    page.off('request', watch);
    expect(sent).toContain(`Bearer ${token}`);
    expect(await page.evaluate<string | null>(STORED_KEY)).toBe(token);
    expect(await page.evaluate<number>('localStorage.length')).toBe(0);
    await browser.screenshot('key-accepted');

    // A new tab of the same browser starts without the key.
    const other = await browser.context.newPage();
    await other.goto(`${origin}/`);
    expect(await other.evaluate<string | null>(STORED_KEY)).toBeNull();
    await other.close();
  });
});
