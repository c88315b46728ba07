import { JSONParser } from '@streamparser/json';
import { CsvError, parse as parseCsv } from 'csv-parse/browser/esm/sync';
import {
  AddressCollector,
  checkText,
  CSV_OPTIONS,
  CsvReader,
  describeFormat,
  detectFormat,
  InputError,
  JsonReader,
  PlainReader,
  type InputTally,
} from '../../src/input/extract.js';

/*
 * What the analyst pastes or drops, read by the command's own rules (src/input/extract.ts): the format
 * detected from the first 64 KiB, the address column or field chosen the same way, repeats counted once by
 * canonical form. src/input/read.ts feeds those rules from Node streams; this feeds them from a string, which
 * a browser holds easily for any list a page is given (a million lines are about 15 MB).
 */

const SAMPLE_BYTES = 64 * 1024;

export interface Extracted {
  /** The distinct addresses, in the order first seen. */
  addresses: string[];
  tally: InputTally;
}

/** Reads `text` (named `name`, whose extension may say CSV) into its distinct addresses. */
export function extractText(text: string, name: string, column?: string): Extracted {
  const collector = new AddressCollector();
  const detected = detectFormat(text.slice(0, SAMPLE_BYTES), name);
  const unit = detected.format === 'json' ? (text.trimStart().startsWith('[') ? 'element' : 'value') : 'line';
  const tally = collector.input(name, unit, describeFormat(detected));
  switch (detected.format) {
    case 'plain': {
      const reader = new PlainReader(collector, tally);
      lines(text).forEach((line, index) => reader.read(line, index + 1));
      reader.end();
      break;
    }
    case 'ndjson': {
      const reader = new JsonReader(collector, tally, column);
      lines(text).forEach((line, index) => {
        if (line.trim() === '') return;
        let value: unknown;
        try {
          value = JSON.parse(line);
        } catch {
          reader.unreadable(index + 1);
          return;
        }
        reader.read(value, index + 1);
      });
      reader.end();
      break;
    }
    case 'csv': {
      const reader = new CsvReader(collector, tally, column);
      let records: Array<{ record: string[]; info: { lines: number } }>;
      try {
        // With `info`, each record comes with where it was read, which csv-parse's types do not say.
        records = parseCsv(text, { delimiter: detected.delimiter ?? ',', ...CSV_OPTIONS }) as unknown as typeof records;
      } catch (error) {
        if (error instanceof CsvError) throw new InputError(`${name} is not valid CSV: ${error.message}`);
        throw error;
      }
      for (const { record, info } of records) reader.read(record, info.lines);
      reader.end();
      break;
    }
    case 'json':
      readJson(text, unit === 'element', new JsonReader(collector, tally, column), name);
      break;
  }
  return { addresses: [...collector.addresses()], tally };
}

function lines(text: string): string[] {
  return text.replace(/^\uFEFF/, '').split(/\r?\n/);
}

/** An array element by element, or JSON documents one after another (as `jq .` prints them). */
function readJson(text: string, array: boolean, reader: JsonReader, name: string): void {
  const parser = new JSONParser(array ? { paths: ['$.*'], keepStack: false } : { paths: ['$'], keepStack: false, separator: '' });
  let values = 0;
  parser.onValue = ({ value, key }) => reader.read(value, array && typeof key === 'number' ? key + 1 : ++values);
  try {
    parser.write(text.replace(/^\uFEFF/, ''));
    // Without a separator the parser ends by itself after the array, and ending it again is an error.
    if (!parser.isEnded) parser.end();
  } catch (error) {
    throw new InputError(`${name} is not valid JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
  reader.end();
}

/** A dropped or chosen file: refused when it is not UTF-8 text (after gunzip, for a .gz), then read as text. */
export async function extractFile(file: File, column?: string): Promise<Extracted> {
  let blob: Blob = file;
  const head = new Uint8Array(await file.slice(0, 2).arrayBuffer());
  if (head[0] === 0x1f && head[1] === 0x8b) {
    try {
      blob = await new Response(file.stream().pipeThrough(new DecompressionStream('gzip'))).blob();
    } catch (error) {
      throw new InputError(`${file.name} is not valid gzip: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  const sample = new Uint8Array(await blob.slice(0, SAMPLE_BYTES).arrayBuffer());
  checkText(sample, file.name, blob.size <= SAMPLE_BYTES);
  const text = new TextDecoder('utf-8', { fatal: false }).decode(await blob.arrayBuffer());
  return extractText(text, file.name.replace(/\.gz$/i, ''), column);
}
