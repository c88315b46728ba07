import type { SourceName } from '../../src/record/model.js';
import { apiJson, showError } from './api.js';
import { byId, h, type Child } from './dom.js';
import { moment, number } from './format.js';
import { SOURCE_LABELS, SOURCES, sourceWords, statusWords, upstreamLinks, type ResultRecord } from './words.js';

/* One address: GET /ip/{addr}, every source's data and state, the status in words, links upstream. */

const field = (label: string, ...value: Child[]) => [h('dt', {}, label), h('dd', {}, ...value)];

function asnText(record: ResultRecord): string | undefined {
  const asn = record.asn;
  if (!asn) return undefined;
  const more = asn.numbers.length > 1 ? ` (also ${asn.numbers.slice(1).map((n) => `AS${n}`).join(', ')})` : '';
  return `AS${asn.number}${asn.name ? ` ${asn.name}` : ''}${more}`;
}

function facts(record: ResultRecord): HTMLElement {
  const { asn, geo } = record;
  // A source that knows nothing of the address says so in the sources table; only answers are facts.
  const greynoise = record.sources.greynoise.status === 'ok' ? record.greynoise : null;
  const dshield = record.dshield;
  const reported = record.sources.dshield.status === 'ok';
  const items: HTMLElement[] = [];
  const asnLine = asnText(record);
  if (asn && asnLine) {
    items.push(
      ...field('AS', h('span', { class: 'asn' }, asnLine)),
      ...field('Prefix', asn.prefix ?? '—', asn.registry ? ` · ${asn.registry}` : '', asn.allocated ? ` · allocated ${asn.allocated}` : ''),
    );
  }
  if (geo) {
    const place = [geo.city, geo.countryName].filter(Boolean).join(', ');
    items.push(...field('Location', place || '—', geo.country ? ` (${geo.country})` : ''));
    if (geo.latitude !== null && geo.longitude !== null) {
      items.push(...field('Coordinates', `${geo.latitude}, ${geo.longitude}`, geo.accuracyRadius !== null ? ` ± ${geo.accuracyRadius} km` : ''));
    }
  }
  if (greynoise) {
    const seen = greynoise.noise ? 'seen scanning the Internet' : 'not seen scanning';
    const riot = greynoise.riot ? ', a common business service (RIOT)' : '';
    items.push(...field('GreyNoise', `${greynoise.classification ?? 'unclassified'}: ${seen}${riot}`, greynoise.name ? ` · ${greynoise.name}` : ''));
  }
  if (dshield && reported) {
    const counts = dshield.attacks === null && dshield.reports === null ? 'no reports' : `${number(dshield.attacks ?? 0)} attacks, ${number(dshield.reports ?? 0)} reports`;
    const seen = dshield.firstSeen ? ` · seen ${dshield.firstSeen} to ${dshield.lastSeen ?? '?'}` : '';
    items.push(...field('DShield', counts, seen));
    if (dshield.threatFeeds.length > 0) items.push(...field('Threat feeds', dshield.threatFeeds.join(', ')));
  }
  // ISC gives the network's abuse contact even for an address it has no reports of.
  if (dshield?.abuseContact) items.push(...field('Abuse contact', dshield.abuseContact));
  return h('dl', { class: 'facts' }, ...items);
}

function sourcesTable(record: ResultRecord): HTMLElement {
  const row = (name: SourceName) => {
    const report = record.sources[name];
    return h(
      'tr',
      {},
      h('th', { scope: 'row' }, SOURCE_LABELS[name]),
      h('td', { class: `state state-${report.status}` }, report.status),
      h('td', {}, sourceWords(report), report.database ? h('div', { class: 'hint' }, report.database) : null),
      h('td', {}, report.fetchedAt ? h('time', { datetime: report.fetchedAt }, moment(report.fetchedAt)) : '—'),
    );
  };
  return h(
    'table',
    { class: 'sources' },
    h('caption', {}, 'Sources'),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'source'), h('th', { scope: 'col' }, 'status'), h('th', { scope: 'col' }, 'what it said'), h('th', { scope: 'col' }, 'fetched'))),
    h('tbody', {}, ...SOURCES.map(row)),
  );
}

export function recordView(record: ResultRecord): HTMLElement {
  const links = upstreamLinks(record);
  return h(
    'article',
    { class: 'record', 'aria-label': `record of ${record.ip}` },
    h('h3', {}, record.ip, ' ', h('span', { class: `badge status-${record.status}` }, record.status)),
    ...statusWords(record).map((sentence) => h('p', { class: 'explain' }, sentence)),
    record.status === 'invalid' || record.status === 'bogon' ? null : facts(record),
    record.status === 'invalid' ? null : sourcesTable(record),
    links.length === 0
      ? null
      : h('p', { class: 'links' }, 'Elsewhere: ', ...links.flatMap((link, i) => [i > 0 ? ' · ' : '', h('a', { href: link.href, target: '_blank', rel: 'noopener noreferrer' }, link.label)])),
    record.updatedAt ? h('p', { class: 'hint' }, 'Stored record last changed ', moment(record.updatedAt)) : null,
  );
}

export async function lookUp(ip: string, refresh: boolean): Promise<void> {
  const result = byId('lookup-result', HTMLDivElement);
  showError('lookup-error', undefined);
  result.replaceChildren(h('p', { class: 'hint' }, `Looking up ${ip}…`));
  const url = new URL(window.location.href);
  url.searchParams.set('ip', ip);
  window.history.replaceState(null, '', url);
  try {
    const record = await apiJson<ResultRecord>(`/ip/${encodeURIComponent(ip)}${refresh ? '?refresh=true' : ''}`);
    result.replaceChildren(recordView(record));
  } catch (error) {
    result.replaceChildren();
    showError('lookup-error', error);
  }
}

export function setUpLookup(): void {
  const form = byId('lookup-form', HTMLFormElement);
  const input = byId('lookup-ip', HTMLInputElement);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void lookUp(input.value.trim(), byId('lookup-refresh', HTMLInputElement).checked);
  });
  const asked = new URL(window.location.href).searchParams.get('ip');
  if (asked) {
    input.value = asked;
    void lookUp(asked, false);
  }
}
