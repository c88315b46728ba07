import { parseAddress } from '../ip/address.js';

/*
 * Finding the IP addresses in what a person hands the command (or, later, a web page): a plain list, a CSV
 * export, an NDJSON log such as cowrie's, a JSON array. This file works on lines, CSV records and JSON values
 * that a reader has already produced, and uses nothing but the language, so that a browser can run it on what
 * its own readers produce; src/input/read.ts feeds it from Node streams.
 */

export const INPUT_FORMATS = ['plain', 'csv', 'ndjson', 'json'] as const;
export type InputFormat = (typeof INPUT_FORMATS)[number];

/** Something the command was given that it cannot read as a list of addresses; the message names it. */
export class InputError extends Error {
  override name = 'InputError';
}

/** A line (or record, or element) that held no address, as the summary shows it. */
export interface Miss {
  /** "line 12", "element 3" */
  where: string;
  /** What it held instead, short: `"hello"`, `no field src_ip`, `not JSON`. */
  what: string;
}

/** How many misses of each input are kept to be shown; the rest are only counted. */
const EXAMPLES_KEPT = 3;
const SNIPPET_LENGTH = 40;

const shorten = (text: string) => (text.length > SNIPPET_LENGTH ? `${text.slice(0, SNIPPET_LENGTH)}…` : text);

/** Text as a miss shows it: quoted, blanks folded, cut short. */
export function snippet(text: string): string {
  return JSON.stringify(shorten(text.replace(/\s+/g, ' ').trim()));
}

/** A JSON value as a miss shows it: as JSON, cut short. */
function snippetJson(value: unknown): string {
  return typeof value === 'string' ? snippet(value) : shorten(JSON.stringify(value) ?? String(value));
}

/** What was found in one input (a file, standard input). */
export class InputTally {
  /** Lines, CSV records or JSON values read (blank lines and comments not counted). */
  items = 0;
  /** Addresses found, repeats included. */
  addresses = 0;
  /** Items that held no address. */
  misses = 0;
  readonly examples: Miss[] = [];

  constructor(
    readonly name: string,
    /** What an item is called in this input: line, element, value. */
    readonly unit: string,
    /** How it was read: "plain list", "CSV (comma-separated)", "NDJSON". */
    readonly format = '',
  ) {}

  miss(where: string, what: string): void {
    this.misses += 1;
    if (this.examples.length < EXAMPLES_KEPT) this.examples.push({ where, what });
  }

  /** `12 lines without an address (line 3 "hello", line 9 no field src_ip, …)` */
  describeMisses(): string {
    const shown = this.examples.map((miss) => `${miss.where} ${miss.what}`).join(', ');
    const more = this.misses > this.examples.length ? ', …' : '';
    return `${count(this.misses, this.unit)} without an address (${shown}${more})`;
  }
}

export const count = (n: number, unit: string, plural = `${unit}s`) => `${n.toLocaleString('en-US')} ${n === 1 ? unit : plural}`;

/**
 * Every distinct address found across the inputs, in the order first seen, by canonical form (so
 * `::ffff:192.0.2.1` and `192.0.2.1` are one). A million distinct addresses take about 60 MB here.
 */
export class AddressCollector {
  readonly #seen = new Set<string>();
  readonly inputs: InputTally[] = [];

  /** Starts the tally of one more input. */
  input(name: string, unit: string, format?: string): InputTally {
    const tally = new InputTally(name, unit, format);
    this.inputs.push(tally);
    return tally;
  }

  /** Adds `text` when it is an IP address (routable or not); false when it is not one. */
  offer(text: string, tally: InputTally): boolean {
    const parsed = parseAddress(text);
    if (parsed.kind === 'invalid') return false;
    tally.addresses += 1;
    this.#seen.add(parsed.ip);
    return true;
  }

  get unique(): number {
    return this.#seen.size;
  }

  get found(): number {
    return this.inputs.reduce((sum, tally) => sum + tally.addresses, 0);
  }

  addresses(): IterableIterator<string> {
    return this.#seen.values();
  }

  /** Frees the addresses once they have been handed on (to a job, which stores them). */
  clear(): void {
    this.#seen.clear();
  }
}

/** Whether `text` is an IP address, in any notation parseAddress accepts. */
export function isAddress(text: string): boolean {
  return parseAddress(text).kind !== 'invalid';
}

// --- format detection -----------------------------------------------------------------------------------

/** A byte that text never holds; UTF-16 text holds one in every other byte of ASCII. */
const NUL = 0;

/**
 * Refuses what is not UTF-8 text, from the first bytes of an input: a NUL byte (images, archives, UTF-16
 * text) or a byte sequence that is not UTF-8. `complete` says whether the sample is the whole input (so that a
 * character cut at the sample's end is not taken for an invalid one).
 */
export function checkText(sample: Uint8Array, name: string, complete: boolean): string {
  const nul = sample.indexOf(NUL);
  if (nul !== -1) {
    throw new InputError(
      `${name} is not a text file (a NUL byte at offset ${nul}): give a list of addresses, a CSV, NDJSON or JSON file ` +
        '(UTF-16 text must be saved as UTF-8)',
    );
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(sample, { stream: !complete });
  } catch {
    throw new InputError(`${name} is not UTF-8 text: give a list of addresses, a CSV, NDJSON or JSON file`);
  }
}

/**
 * How a CSV input is parsed (csv-parse's options, with the detected delimiter): by the command (read.ts) and by
 * the web page alike, so that both read an export the same way.
 */
export const CSV_OPTIONS = {
  bom: true,
  info: true,
  relax_column_count: true,
  relax_quotes: true,
  skip_empty_lines: true,
  comment: '#',
  comment_no_infix: true,
} as const;

const CSV_DELIMITERS = [',', '\t', ';', '|'] as const;
const SAMPLE_LINES = 50;

function sampleLines(sample: string): string[] {
  const lines = sample.split(/\r?\n/);
  // The last line of a sample may be cut short; it is only kept when it is the only one.
  if (lines.length > 1) lines.pop();
  return lines.filter((line) => line.trim() !== '' && !line.trimStart().startsWith('#')).slice(0, SAMPLE_LINES);
}

/** The delimiter that every sampled line holds (the first of , TAB ; | that does), or undefined. */
export function detectDelimiter(sample: string): string | undefined {
  const lines = sampleLines(sample.replace(/^\uFEFF/, ''));
  if (lines.length === 0) return undefined;
  return CSV_DELIMITERS.find((delimiter) => lines.every((line) => line.includes(delimiter)));
}

function parsesAs(text: string): 'object' | 'string' | 'other' | undefined {
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value === 'string') return 'string';
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? 'object' : 'other';
  } catch {
    return undefined;
  }
}

export interface Detected {
  format: InputFormat;
  /** CSV only. */
  delimiter?: string;
}

/**
 * The format of an input from its first bytes (and its name's extension for CSV): a JSON array or document
 * starts with `[` or `{` — NDJSON when its first line is a whole object, as in cowrie's log —; CSV when every
 * sampled line holds the same delimiter; a plain list otherwise.
 */
export function detectFormat(sample: string, name = ''): Detected {
  const text = sample.replace(/^\uFEFF/, '');
  const start = text.trimStart();
  const firstLine = start.split(/\r?\n/, 1)[0]?.trim() ?? '';
  if (start.startsWith('[')) return { format: 'json' };
  if (start.startsWith('{')) return { format: parsesAs(firstLine) === 'object' ? 'ndjson' : 'json' };
  if (start.startsWith('"') && parsesAs(firstLine) === 'string') return { format: 'ndjson' };
  const delimiter = detectDelimiter(text);
  if (delimiter !== undefined) return { format: 'csv', delimiter };
  if (/\.(csv|tsv)$/i.test(name)) return { format: 'csv', delimiter: /\.tsv$/i.test(name) ? '\t' : ',' };
  return { format: 'plain' };
}

/** How a detected format is named to the person reading: "plain list", "semicolon-separated CSV", "NDJSON". */
export function describeFormat(detected: Detected): string {
  if (detected.format !== 'csv') return detected.format === 'plain' ? 'plain list' : detected.format.toUpperCase();
  const names: Record<string, string> = { ',': 'comma', '\t': 'tab', ';': 'semicolon', '|': 'bar' };
  return `${names[detected.delimiter ?? ','] ?? detected.delimiter}-separated CSV`;
}

// --- readers --------------------------------------------------------------------------------------------

/** Turns what one input's reader produces into addresses for the collector. */
export interface ItemReader<T> {
  read(item: T, position: number): void;
  /** After the last item: what is still held is settled. */
  end(): void;
}

/** One address per line; `#` starts a comment that runs to the end of the line; blank lines are skipped. */
export class PlainReader implements ItemReader<string> {
  constructor(
    private readonly collector: AddressCollector,
    private readonly tally: InputTally,
  ) {}

  read(line: string, lineNumber: number): void {
    const hash = line.indexOf('#');
    const text = (hash === -1 ? line : line.slice(0, hash)).trim();
    if (text === '') return;
    this.tally.items += 1;
    if (!this.collector.offer(text, this.tally)) this.tally.miss(`line ${lineNumber}`, snippet(text));
  }

  end(): void {}
}

/**
 * CSV records (arrays of cells). With a column name, the first record is the header that holds it (a number
 * names the column by position, 1 for the first, when no header cell has that name); without one, the first
 * column that holds an address is read, and a first record that holds none is the header.
 */
export class CsvReader implements ItemReader<string[]> {
  /** Records before the first one that holds an address, when no column was named: the header, maybe more. */
  static readonly SEARCH_LIMIT = 1000;
  #column: number | undefined;
  #label = '';
  #header: string[] | undefined;
  #waiting: Array<{ cells: string[]; line: number }> = [];

  constructor(
    private readonly collector: AddressCollector,
    private readonly tally: InputTally,
    private readonly named: string | undefined,
    /** Told which column is read when the reader chose it. */
    private readonly notice: (message: string) => void = () => undefined,
  ) {}

  read(cells: string[], line: number): void {
    if (cells.every((cell) => cell.trim() === '')) return;
    if (this.#column === undefined) {
      if (this.named !== undefined) this.#useNamed(cells, line);
      else this.#search(cells, line);
      return;
    }
    this.#take(cells, line);
  }

  end(): void {
    // No record held an address in any column: each of them is reported, the header too.
    for (const { cells, line } of this.#waiting) {
      this.tally.items += 1;
      this.tally.miss(`line ${line}`, snippet(cells.join(',')));
    }
    this.#waiting = [];
  }

  #useNamed(cells: string[], line: number): void {
    const named = this.named ?? '';
    const exact = cells.indexOf(named);
    const loose = exact !== -1 ? exact : cells.findIndex((cell) => cell.trim().toLowerCase() === named.trim().toLowerCase());
    if (loose !== -1) {
      this.#header = cells;
      this.#column = loose;
      this.#label = `column ${cells[loose] ?? named}`;
      return;
    }
    const position = /^[1-9]\d*$/.test(named) ? Number(named) - 1 : undefined;
    if (position === undefined) {
      const columns = cells.map((cell) => JSON.stringify(cell.trim())).join(', ');
      throw new InputError(`${this.tally.name} has no column "${named}" (its first line holds ${columns})`);
    }
    this.#column = position;
    this.#label = `column ${named}`;
    // A first record whose cell there is an address is data; anything else there is its header.
    if (isAddress(cells[position] ?? '')) this.#take(cells, line);
    else this.#header = cells;
  }

  #search(cells: string[], line: number): void {
    const found = cells.findIndex((cell) => isAddress(cell));
    if (found === -1) {
      this.#waiting.push({ cells, line });
      if (this.#waiting.length > CsvReader.SEARCH_LIMIT) {
        throw new InputError(
          `${this.tally.name}: no column holds an IP address in the first ${CsvReader.SEARCH_LIMIT} lines; name it with --column`,
        );
      }
      return;
    }
    this.#column = found;
    const [first, ...rest] = this.#waiting;
    this.#waiting = [];
    this.#header = first?.cells;
    const name = this.#header?.[found]?.trim();
    this.#label = name ? `column ${name}` : `column ${found + 1}`;
    this.notice(`${this.tally.name}: reading ${this.#label}${name ? ` (column ${found + 1})` : ''}; --column chooses another`);
    for (const record of rest) this.#take(record.cells, record.line);
    this.#take(cells, line);
  }

  #take(cells: string[], line: number): void {
    this.tally.items += 1;
    const cell = (cells[this.#column ?? 0] ?? '').trim();
    if (cell === '') this.tally.miss(`line ${line}`, `empty ${this.#label}`);
    else if (!this.collector.offer(cell, this.tally)) this.tally.miss(`line ${line}`, snippet(cell));
  }
}

/** Field names that hold the address in common logs, tried first when no --field is given. */
const LIKELY_FIELDS = ['src_ip', 'ip', 'ip_address', 'ipAddress', 'address', 'addr', 'source_ip', 'sourceIp', 'client_ip', 'remote_addr', 'src'];

/** Follows a dotted path (`a.b.0.c`) into a JSON value. */
export function valueAt(value: unknown, path: readonly string[]): unknown {
  let here = value;
  for (const key of path) {
    if (typeof here !== 'object' || here === null) return undefined;
    here = (here as Record<string, unknown>)[key];
  }
  return here;
}

/**
 * JSON values (NDJSON lines, array elements): a string is the address itself; in an object, the field at
 * the dotted path (`--field src_ip`, `--field source.address`), which may hold an array of addresses. Without
 * a path, the first object that holds an address decides the field: a usual name (src_ip, ip, …) first,
 * else its first top-level field that holds one.
 */
export class JsonReader implements ItemReader<unknown> {
  #path: string[] | undefined;
  readonly #given: boolean;

  constructor(
    private readonly collector: AddressCollector,
    private readonly tally: InputTally,
    field: string | undefined,
    private readonly notice: (message: string) => void = () => undefined,
  ) {
    this.#path = field === undefined ? undefined : field.split('.');
    this.#given = field !== undefined;
  }

  read(value: unknown, position: number): void {
    this.tally.items += 1;
    const where = `${this.tally.unit} ${position}`;
    if (typeof value === 'string' && !this.#given) {
      if (!this.collector.offer(value, this.tally)) this.tally.miss(where, snippet(value));
      return;
    }
    if (typeof value !== 'object' || value === null) {
      this.tally.miss(where, snippetJson(value));
      return;
    }
    const path = this.#path ?? this.#choose(value);
    if (path === undefined) {
      this.tally.miss(where, 'no field holding an address');
      return;
    }
    const found = valueAt(value, path);
    const field = path.join('.');
    if (found === undefined || found === null) {
      this.tally.miss(where, `no field ${field}`);
    } else if (Array.isArray(found)) {
      const strings = found.filter((item): item is string => typeof item === 'string');
      const taken = strings.filter((item) => this.collector.offer(item, this.tally)).length;
      if (taken === 0) this.tally.miss(where, `no address in ${field}`);
    } else if (typeof found !== 'string' || !this.collector.offer(found, this.tally)) {
      this.tally.miss(where, `${field} ${snippetJson(found)}`);
    }
  }

  /** Malformed input where a value should be (an NDJSON line that is not JSON). */
  unreadable(position: number, what = 'not JSON'): void {
    this.tally.items += 1;
    this.tally.miss(`${this.tally.unit} ${position}`, what);
  }

  end(): void {}

  #choose(value: object): string[] | undefined {
    const fields = value as Record<string, unknown>;
    const holds = (key: string) => typeof fields[key] === 'string' && isAddress(fields[key]);
    const key = LIKELY_FIELDS.find(holds) ?? Object.keys(fields).find(holds);
    if (key === undefined) return undefined;
    this.#path = [key];
    this.notice(`${this.tally.name}: reading field ${key}; --field chooses another`);
    return this.#path;
  }
}
