import ipaddr from 'ipaddr.js';
import { api } from './api.js';
import type { ResultRecord } from './words.js';

/*
 * A job's results as table rows. 100,000 whole records would hold a few hundred MB in the page; a row keeps
 * what the table shows, sorts and filters by (about 20 fields), and a record is read whole again by
 * looking its address up.
 */

export interface Row {
  /** Position in the job's input order. */
  index: number;
  ip: string;
  input: string;
  status: ResultRecord['status'];
  /** Sorts addresses by value: IPv4 before IPv6, then numerically; anything else after them. */
  ipKey: string;
  asn: number | null;
  asName: string | null;
  prefix: string | null;
  /** MaxMind's, else the AS registration's (as the CSV has it). */
  country: string | null;
  city: string | null;
  classification: string | null;
  noise: boolean | null;
  riot: boolean | null;
  attacks: number | null;
  reports: number | null;
  /** Why: an invalid input's error, a bogon's range, or the sources that failed. */
  note: string;
}

function ipKey(ip: string): string {
  if (!ipaddr.isValid(ip)) return `9${ip}`;
  const bytes = ipaddr.parse(ip).toByteArray();
  return `${bytes.length === 4 ? 4 : 6}${bytes.map((byte) => byte.toString(16).padStart(2, '0')).join('')}`;
}

function note(record: ResultRecord): string {
  if (record.status === 'invalid') return record.error ?? '';
  if (record.status === 'bogon') return record.range ?? '';
  return Object.entries(record.sources)
    .filter(([, report]) => report.status === 'error' || report.status === 'rate_limited' || report.status === 'disabled')
    .map(([name, report]) => `${name} ${report.status}`)
    .join(', ');
}

export function toRow(record: ResultRecord, index: number): Row {
  return {
    index,
    ip: record.ip,
    input: record.input,
    status: record.status,
    ipKey: ipKey(record.ip),
    asn: record.asn?.number ?? null,
    asName: record.asn?.name ?? null,
    prefix: record.asn?.prefix ?? null,
    country: record.geo?.country ?? record.asn?.country ?? null,
    city: record.geo?.city ?? null,
    classification: record.greynoise?.classification ?? null,
    noise: record.greynoise?.noise ?? null,
    riot: record.greynoise?.riot ?? null,
    attacks: record.dshield?.attacks ?? null,
    reports: record.dshield?.reports ?? null,
    note: note(record),
  };
}

/** Every result of a job, streamed as NDJSON and turned into rows as the lines arrive. */
export async function loadRows(id: string, progress: (rows: number) => void): Promise<Row[]> {
  const response = await api(`/jobs/${encodeURIComponent(id)}/results`, { headers: { accept: 'application/x-ndjson' } });
  const rows: Row[] = [];
  if (!response.body) return rows;
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let rest = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    const lines = (rest + value).split('\n');
    rest = lines.pop() ?? '';
    for (const line of lines) if (line !== '') rows.push(toRow(JSON.parse(line) as ResultRecord, rows.length));
    progress(rows.length);
  }
  if (rest.trim() !== '') rows.push(toRow(JSON.parse(rest) as ResultRecord, rows.length));
  return rows;
}
