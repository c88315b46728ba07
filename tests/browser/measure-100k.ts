import { setTimeout as sleep } from 'node:timers/promises';
import { startHarness } from '../support/app.js';
import { buildDist } from '../support/cli.js';
import { launchBrowser } from './support/browser.js';

/*
 * How the page copes with a 100,000-address job (MaxMind and Team Cymru, on the doubles): reading and submitting
 * the file, loading the results into the table, sorting, filtering and scrolling it. A measurement, not a test:
 * `npx tsx tests/browser/measure-100k.ts` (README, Web page). Page expressions are strings, evaluated by the
 * debugger protocol, because the page's policy refuses the eval a page function would need.
 */

const FIRST_OCTETS = [23, 31, 45, 46, 62, 77, 80, 85, 91, 93, 103, 109, 141, 151, 176, 185, 188, 193, 195, 212, 213];
const list: string[] = [];
for (let i = 0; i < 100_000; i += 1) {
  const n = Math.floor(i / FIRST_OCTETS.length);
  list.push(`${FIRST_OCTETS[i % FIRST_OCTETS.length]}.${(n >> 8) & 255}.${n & 255}.1`);
}

await buildDist();
const harness = await startHarness();
await harness.app.listen({ host: '127.0.0.1', port: 0 });
const { port } = harness.app.server.address() as { port: number };
const browser = await launchBrowser('measure-100k');
const { page } = browser;
page.setDefaultTimeout(600_000);

async function until(expression: string): Promise<void> {
  while ((await page.evaluate(expression)) !== true) await sleep(5);
}

async function time(what: string, act: () => Promise<unknown>, done: string): Promise<void> {
  const start = performance.now();
  await act();
  await until(done);
  console.log(`${what}: ${Math.round(performance.now() - start)} ms`);
}

const text = (selector: string) => `document.querySelector('${selector}').textContent`;

await page.goto(`http://127.0.0.1:${port}/`);
await page.locator('#list-file').setInputFiles({ name: 'list.txt', mimeType: 'text/plain', buffer: Buffer.from(list.join('\n')) });
await page.getByRole('checkbox', { name: 'GreyNoise' }).uncheck();
await page.getByRole('checkbox', { name: 'DShield' }).uncheck();
await time('read the file and submit the job', () => page.getByRole('button', { name: 'Submit as a job' }).click(), `new URL(location.href).searchParams.has('job')`);
await time('the job, until the page shows it completed', async () => undefined, `${text('#job-status')}.includes('completed')`);
await time('load 100,000 rows, summary and first draw', async () => undefined, `${text('#results-count')} === '100,000 results'`);
const sortByName = () => page.locator('th[data-key="asName"] button').click();
await time('sort by AS name', sortByName, `document.querySelector('th[data-key="asName"]').getAttribute('aria-sort') === 'ascending'`);
await time('sort by AS name, the other way', sortByName, `${text('#results-table tbody tr:nth-child(2) td:nth-child(5)')} === 'FAKE-AS1213, US'`);
await time('filter by AS1185', () => page.locator('#filter-asn').fill('AS1185'), `${text('#results-count')}.startsWith('4,762 of')`);
await time('clear the filters', () => page.getByRole('button', { name: 'Clear the filters' }).click(), `${text('#results-count')} === '100,000 results'`);
const scrolling = await page.evaluate(`(async () => {
  const scroller = document.querySelector('#results-table');
  const times = [];
  for (let i = 0; i < 60; i += 1) {
    const start = performance.now();
    scroller.scrollTop += 20000;
    await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  return { median: Math.round(times[30]), worst: Math.round(times[59]), rowsInDocument: document.querySelectorAll('#results-table tbody tr').length };
})()`);
console.log('scrolling by 20,000 px, to the second frame after (60 times, ms):', JSON.stringify(scrolling));
console.log(`JavaScript heap: ${String(await page.evaluate('Math.round(performance.memory.usedJSHeapSize / 1e6)'))} MB`);
await browser.screenshot('100k');
await browser.close();
await harness.close();
