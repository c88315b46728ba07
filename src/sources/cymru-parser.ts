import { canonicalIp } from '../ip/address.js';
import type { Asn } from '../record/model.js';

const REGISTRIES = new Set(['arin', 'ripencc', 'apnic', 'lacnic', 'afrinic']);
const MAX_ASN = 4_294_967_295;
const DATE = /^\d{4}-\d{2}-\d{2}$/;

function textOrNull(field: string): string | null {
  const value = field.trim();
  return value === '' || value === 'NA' ? null : value;
}

/** The AS column: null for `NA`, undefined when the line is not a data row (banner, header, garbage). */
function parseAsNumbers(field: string): number[] | null | undefined {
  const value = field.trim();
  if (value === 'NA') return null;
  const parts = value.split(/\s+/);
  if (!parts.every((part) => /^\d{1,10}$/.test(part))) return undefined;
  const numbers = parts.map(Number);
  return numbers.every((n) => n <= MAX_ASN) ? numbers : undefined;
}

function parseRow(line: string): { ip: string; asn: Asn | null } | undefined {
  if (line.startsWith('Error:')) return undefined;
  const fields = line.split('|');
  if (fields.length < 7) return undefined;
  const [asField, ipField, prefix, country, registry, allocated] = fields as [
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  const numbers = parseAsNumbers(asField);
  const ip = canonicalIp(ipField.trim());
  if (numbers === undefined || ip === null) return undefined;
  if (numbers === null) return { ip, asn: null };
  const registryName = registry.trim().toLowerCase();
  const allocatedDate = allocated.trim();
  return {
    ip,
    asn: {
      number: numbers[0] as number,
      numbers,
      // The name is the one free-text column and the last one, so any stray pipe belongs to it.
      name: textOrNull(fields.slice(6).join('|')),
      prefix: textOrNull(prefix),
      country: textOrNull(country)?.toUpperCase() ?? null,
      registry: REGISTRIES.has(registryName) ? registryName : null,
      allocated: DATE.test(allocatedDate) ? allocatedDate : null,
      source: 'cymru',
    },
  };
}

/**
 * Reads a Team Cymru bulk whois answer (verbose mode) into canonical address → origin AS, or null when
 * the server reported no route (`NA`). Lines that are not data rows are ignored. When an address appears
 * more than once, the first row with a route wins: a repeated `NA` must not erase a real answer.
 */
export function parseBulkAnswer(text: string): Map<string, Asn | null> {
  const answers = new Map<string, Asn | null>();
  for (const line of text.split(/\r?\n/)) {
    const row = parseRow(line);
    if (row && (answers.get(row.ip) ?? null) === null) answers.set(row.ip, row.asn);
  }
  return answers;
}
