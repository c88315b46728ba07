import { readFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { respond } from '../doubles/http-upstream.js';
import { listenOnLoopback, startHarness, type Harness } from '../support/app.js';
import { buildDist } from '../support/cli.js';
import { elsewhere, launchBrowser, type Browser } from './support/browser.js';

/*
 * The analysts' page and /docs in a real browser (Debian's headless Chromium, driven by playwright-core), served
 * by the service on its PostgreSQL database, real MaxMind files and the upstream doubles, with the page built
 * by Vite into dist/web as `npm run build` builds it.
 */

let harness: Harness;
let browser: Browser;
let origin: string;

beforeAll(async () => {
  await buildDist();
  harness = await startHarness();
  origin = await listenOnLoopback(harness);
  browser = await launchBrowser('page');
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await harness?.close();
});

/** 2,000 distinct addresses: 50 that MaxMind places in London (AS20712), 390 in each of five Team Cymru ASes. */
function addresses(): string[] {
  const list = Array.from({ length: 50 }, (_, i) => `81.2.69.${i + 1}`);
  for (const first of [45, 46, 77, 93, 185]) {
    for (let i = 0; i < 390; i += 1) list.push(`${first}.10.${Math.floor(i / 250)}.${(i % 250) + 1}`);
  }
  return list;
}

/** GreyNoise knows 30 malicious scanners and 20 benign ones; DShield has reports of 40 attackers (10 to 400 attacks). */
function programUpstreams(list: string[]) {
  const malicious = list.filter((ip) => ip.startsWith('185.')).slice(0, 30);
  const benign = list.filter((ip) => ip.startsWith('46.')).slice(0, 20);
  for (const ip of malicious) {
    harness.greynoise.respondTo(ip, respond.json({ ip, noise: true, riot: false, classification: 'malicious', name: 'unknown', link: null, last_seen: '2026-11-30' }));
  }
  for (const ip of benign) {
    harness.greynoise.respondTo(ip, respond.json({ ip, noise: true, riot: false, classification: 'benign', name: 'Example Research', last_seen: '2026-11-30' }));
  }
  const attackers = list.filter((ip) => ip.startsWith('77.')).slice(0, 40);
  attackers.forEach((ip, k) => {
    const attacks = 10 * (k + 1);
    harness.dshield.respondTo(
      ip,
      respond.json({
        ip: { number: ip, count: String(attacks * 3), attacks, maxdate: '2026-11-30', mindate: '2026-10-01', updated: '2026-11-30 06:00:00', threatfeeds: null, asabusecontact: 'abuse@example.net' },
      }),
    );
  });
  return { malicious, benign, attackers, topAttacker: attackers.at(-1)! };
}

describe('the page at /', () => {
  it('looks up one address from the keyboard: its AS, place, every source with its state, and links upstream', async () => {
    const { page } = browser;
    await page.goto(`${origin}/`);
    await page.getByLabel('IP address').focus();
    await page.keyboard.type('81.2.69.160');
    await page.keyboard.press('Enter');
    const record = page.locator('#lookup-result .record');
    await expect.poll(() => record.locator('.asn').textContent()).toBe('AS20712 Andrews & Arnold Ltd');
    expect(await record.textContent()).toContain('London, United Kingdom (GB)');
    expect(await record.locator('.explain').first().textContent()).toBe('Every source asked has answered.');
    const states = await record.locator('table.sources tbody tr').allTextContents();
    expect(states).toHaveLength(4);
    expect(states[0]).toMatch(/^MaxMindokanswered.*GeoLite2-City 2026-11-17/);
    expect(states[1]).toContain('skipped');
    expect(await record.getByRole('link', { name: 'GreyNoise Visualizer' }).getAttribute('href')).toBe('https://viz.greynoise.io/ip/81.2.69.160');
    expect(await record.getByRole('link', { name: 'SANS ISC' }).getAttribute('href')).toBe('https://isc.sans.edu/ipinfo/81.2.69.160');
    // The address is in the URL, so the lookup can be shared or reloaded.
    expect(new URL(page.url()).searchParams.get('ip')).toBe('81.2.69.160');
    await browser.screenshot('lookup');
  });

  it("shows the API's problem title and detail for a string that is not an address", async () => {
    const { page } = browser;
    await page.getByLabel('IP address').fill('not-an-ip');
    await page.getByRole('button', { name: 'Look up' }).click();
    const error = page.locator('#lookup-error');
    await expect.poll(() => error.isVisible()).toBe(true);
    expect(await error.locator('.problem-title').textContent()).toBe('Bad Request');
    expect(await error.locator('.problem-detail').textContent()).toMatch(/not-an-ip.*\(invalid-address\)$/);
    await browser.screenshot('lookup-problem');
  });

  it('says clearly that a paste holds no address, and submits nothing', async () => {
    const { page } = browser;
    const jobsBefore = (await harness.app.jobs.list(undefined, 100)).length;
    await page.goto(`${origin}/`);
    await page.getByLabel(/Paste anything/).fill('# from the firewall\nhello\nworld\n');
    await page.getByRole('button', { name: 'Submit as a job' }).click();
    const error = page.locator('#list-error');
    await expect.poll(() => error.isVisible()).toBe(true);
    expect(await error.textContent()).toContain('No IP address found in the pasted text: 2 lines without an address (line 2 "hello", line 3 "world")');
    expect(await page.locator('#list-summary').textContent()).toBe('the pasted text (plain list): 2 lines, 0 addresses, 0 distinct; 2 lines without an address (line 2 "hello", line 3 "world")');
    expect((await harness.app.jobs.list(undefined, 100)).length).toBe(jobsBefore);
    expect(await page.locator('#job').isHidden()).toBe(true);
    await browser.screenshot('no-addresses');
  });

  it('runs 2,000 pasted addresses as a job through every pass, survives a reload, then sorts, filters and downloads them', async () => {
    const { page } = browser;
    const list = addresses();
    const { malicious, attackers, topAttacker } = programUpstreams(list);
    await page.goto(`${origin}/`);
    // DShield refuses the last address once, with Retry-After: 3 s. Its phase has begun by then (the rate-limited
    // pass goes in chunks of CYMRU_BATCH_SIZE, 500), so the job shows the phase waiting, and the page the wait.
    const last = list.at(-1)!;
    harness.dshield.respondTo(
      last,
      respond.limited(3),
      respond.json({ ip: { number: last, count: null, attacks: null, maxdate: null, mindate: null, updated: null, threatfeeds: null } }),
    );
    await page.getByLabel(/Paste anything/).fill(`src,dst\n${list.map((ip) => `${ip},10.0.0.5`).join('\n')}\n`);
    await page.getByLabel('Label (optional)').fill('honeypot 2026-12-01');
    await page.getByRole('button', { name: 'Submit as a job' }).click();
    expect(await page.locator('#list-summary').textContent()).toBe('the pasted text (comma-separated CSV): 2,000 lines, 2,000 addresses, 2,000 distinct');
    await expect.poll(() => new URL(page.url()).searchParams.get('job'), { timeout: 10_000 }).toMatch(/^[0-9a-f-]{36}$/);
    const id = new URL(page.url()).searchParams.get('job')!;

    const dshield = page.locator('#job-phases li[data-phase="dshield"]');
    await dshield.and(page.locator('.phase-waiting')).waitFor({ timeout: 20_000 });
    expect(await dshield.locator('.phase-text').textContent()).toMatch(/waiting \d+ s for the upstream's Retry-After \(until /);
    expect(await page.locator('#job-status').textContent()).toMatch(/^“honeypot 2026-12-01” running · 2,000 strings: 2,000 distinct routable addresses/);
    await browser.screenshot('job-waiting');

    // The job is in the URL: a reload follows it again.
    await page.reload();
    await expect.poll(() => page.locator('#job-status').textContent(), { timeout: 40_000 }).toMatch(/completed/);
    for (const name of ['collect', 'maxmind', 'cymru', 'greynoise', 'dshield', 'persist']) {
      expect(await page.locator(`#job-phases li[data-phase="${name}"]`).getAttribute('class')).toBe('phase phase-done');
    }
    expect(await page.locator('#job-phases li[data-phase="cymru"] .phase-text').textContent()).toBe('2,000 / 2,000 · 1,950 asked · 4 bulk queries · done');
    await expect.poll(() => page.locator('#results-count').textContent(), { timeout: 20_000 }).toBe('2,000 results');
    await browser.screenshot('job-completed');
    await browser.screenshot('results', page.locator('#results'));

    // Virtualised: the document holds a screenful of the 2,000 rows, and the keyboard scrolls to the last.
    const table = page.locator('#results-table table');
    expect(await table.getAttribute('aria-rowcount')).toBe('2001');
    const drawn = page.locator('#results-table tbody tr:not(.spacer)');
    expect(await drawn.count()).toBeLessThan(80);
    await page.locator('#results-table').focus();
    await page.keyboard.press('End');
    await expect.poll(() => page.locator('#results-table tr[aria-rowindex="2001"]').count()).toBe(1);
    expect(await drawn.count()).toBeLessThan(80);

    // The summary: the five Cymru ASes of 390 at the top, then London's; 50 known scanners.
    const charts = page.locator('#summary figure');
    expect(await charts.first().locator('li').first().textContent()).toMatch(/^AS1045 FAKE-AS1045, US.*390$/);
    expect(await page.locator('#summary .scanners').textContent()).toMatch(/^50 known scanners/);

    // Sorting by DShield attacks, largest first (the header's button, twice).
    const attacksHeader = page.locator('th[data-key="attacks"]');
    await attacksHeader.getByRole('button').click();
    await attacksHeader.getByRole('button').click();
    expect(await attacksHeader.getAttribute('aria-sort')).toBe('descending');
    const firstRow = page.locator('#results-table tbody tr:not(.spacer)').first();
    expect(await firstRow.locator('td').nth(1).textContent()).toBe(topAttacker);
    expect(await firstRow.locator('td').nth(8).textContent()).toBe('400');

    const count = page.locator('#results-count');
    const filters = page.getByRole('form', { name: 'filter the results' });
    await filters.getByLabel('GreyNoise classification').selectOption('malicious');
    await expect.poll(() => count.textContent()).toBe(`${malicious.length} of 2,000 results match the filters`);
    await filters.getByLabel('GreyNoise classification').selectOption('');
    await filters.getByLabel('Country').selectOption('GB');
    await expect.poll(() => count.textContent()).toBe('50 of 2,000 results match the filters');
    await filters.getByLabel('Country').selectOption('');
    await filters.getByLabel('AS number').fill('AS1185');
    await expect.poll(() => count.textContent()).toBe('390 of 2,000 results match the filters');
    await filters.getByLabel('AS number').fill('');
    await filters.getByLabel('DShield attacks at least').fill('200');
    await expect.poll(() => count.textContent()).toBe(`${attackers.filter((_, k) => 10 * (k + 1) >= 200).length} of 2,000 results match the filters`);
    await filters.getByLabel('Status').selectOption('ok');
    await expect.poll(() => count.textContent()).toBe('21 of 2,000 results match the filters');
    await browser.screenshot('results-filtered');
    await page.getByRole('button', { name: 'Clear the filters' }).click();
    await expect.poll(() => count.textContent()).toBe('2,000 results');

    // The downloads are the job's own CSV and NDJSON endpoints, byte for byte.
    for (const [button, accept] of [['Download CSV', 'text/csv'], ['Download NDJSON', 'application/x-ndjson']] as const) {
      const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: button }).click()]);
      const downloaded = await readFile(await download.path(), 'utf8');
      const served = await (await fetch(`${origin}/jobs/${id}/results`, { headers: { accept } })).text();
      expect(downloaded).toBe(served);
      expect(downloaded.split('\n').filter(Boolean)).toHaveLength(accept === 'text/csv' ? 2001 : 2000);
    }
  }, 120_000);

  it('reads a cowrie log dropped as a .gz file by the command\'s rules, and runs it as a job', async () => {
    const { page } = browser;
    await page.goto(`${origin}/`);
    const attackers = ['81.2.69.200', '45.80.9.1', '2a02:d8::9', '45.80.9.2', '10.1.2.3'];
    const events = attackers.flatMap((ip, i) => [
      { eventid: 'cowrie.session.connect', src_ip: ip, src_port: 40000 + i, dst_ip: '10.0.0.5', dst_port: 22, session: `c0ffee${i}` },
      { eventid: 'cowrie.login.failed', src_ip: ip, username: 'root', password: '123456', session: `c0ffee${i}` },
    ]);
    const log = `${events.map((event) => JSON.stringify(event)).join('\n')}\n{"eventid":"cowrie.log.rotated","message":"truncated\n`;
    const bytes = JSON.stringify([...gzipSync(log)]);
    // A drop as the browser makes it: a DragEvent whose DataTransfer holds the file.
    const dataTransfer = await page.evaluateHandle(
      `(() => { const transfer = new DataTransfer(); transfer.items.add(new File([new Uint8Array(${bytes})], 'cowrie.json.gz')); return transfer; })()`,
    );
    await page.locator('#list-form').dispatchEvent('drop', { dataTransfer });
    expect(await page.locator('#list-summary').textContent()).toBe('cowrie.json.gz chosen.');
    await page.getByRole('button', { name: 'Submit as a job' }).click();
    await expect.poll(() => page.locator('#list-summary').textContent()).toBe(
      'cowrie.json (NDJSON): 11 lines, 10 addresses, 5 distinct; 1 line without an address (line 11 not JSON)',
    );
    await expect.poll(() => page.locator('#results-count').textContent(), { timeout: 30_000 }).toBe('5 results');
    const addresses = await page.locator('#results-table tbody tr:not(.spacer) td:nth-child(2)').allTextContents();
    expect(addresses).toEqual(attackers);
    expect(await page.locator('#results-table tbody tr:not(.spacer) td:nth-child(3)').allTextContents()).toEqual(['ok', 'ok', 'ok', 'ok', 'bogon']);
    await browser.screenshot('dropped-cowrie-log');
  });

  it('stays readable in a narrow window: nothing but the table scrolls sideways', async () => {
    const { page } = browser;
    await page.setViewportSize({ width: 380, height: 800 });
    expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(380);
    await browser.screenshot('narrow');
    await page.setViewportSize({ width: 1280, height: 900 });
  });
});

describe('the API reference at /docs', () => {
  it("lists every operation of the served OpenAPI document, enrichment's and the jobs'", async () => {
    const { page } = browser;
    await page.goto(`${origin}/docs`);
    const operations = page.locator('.opblock-summary');
    await operations.first().waitFor();
    const methods = await operations.locator('.opblock-summary-method').allTextContents();
    const paths = await operations.locator('.opblock-summary-path').allTextContents();
    const listed = methods.map((method, i) => `${method} ${paths[i]}`);
    expect(listed).toEqual(
      expect.arrayContaining(['POST /enrich', 'GET /ip/{addr}', 'POST /jobs', 'GET /jobs', 'GET /jobs/{id}', 'GET /jobs/{id}/results', 'DELETE /jobs/{id}']),
    );
    await browser.screenshot('docs');
  });
});

describe('the pages', () => {
  it('never asked anything of another host: no CDN, no font, no tracker', () => {
    expect(browser.requests.length).toBeGreaterThan(10);
    expect(elsewhere(browser.requests, origin)).toEqual([]);
  });

  it('logged no error but the answers the tests asked for (the 400 of "not-an-ip"), and broke no policy', () => {
    expect(browser.errors.filter((error) => !/^Failed to load resource: the server responded with a status of 400/.test(error))).toEqual([]);
  });
});
