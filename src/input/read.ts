import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { Readable, type Duplex } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { CsvError, parse as parseCsv } from 'csv-parse';
import { streamArray } from 'stream-json/streamers/stream-array.js';
import { streamValues } from 'stream-json/streamers/stream-values.js';
import { errorMessage } from '../errors/message.js';
import {
  checkText,
  CSV_OPTIONS,
  CsvReader,
  describeFormat,
  detectDelimiter,
  detectFormat,
  InputError,
  JsonReader,
  PlainReader,
  type AddressCollector,
  type Detected,
  type InputFormat,
  type InputTally,
} from './extract.js';

/*
 * Node streams into src/input/extract.ts: every input is read as a stream, a chunk at a time, so a file of
 * any length costs only the distinct addresses it holds. The format is chosen from the first 64 KiB.
 */

/** How much of an input is looked at to choose its format and to refuse binary files. */
const SAMPLE_BYTES = 64 * 1024;

export const STDIN = '-';

export interface ReadOptions {
  /** Given with --input; detected per input otherwise. */
  format?: InputFormat;
  /** CSV: --column. */
  column?: string;
  /** NDJSON/JSON: --field. */
  field?: string;
  /** Which column or field was chosen, which format was detected. */
  notice?: (message: string) => void;
  /** After every chunk read. */
  progress?: (progress: ReadProgress) => void;
  /** Standard input, replaceable for tests. */
  stdin?: NodeJS.ReadableStream;
}

export interface ReadProgress {
  name: string;
  /** Bytes read from the input as stored (compressed, for a .gz). */
  bytes: number;
  /** The file's size; undefined for standard input and pipes. */
  size: number | undefined;
  tally: InputTally;
}

const displayName = (path: string) => (path === STDIN ? 'standard input' : path);

async function open(path: string, options: ReadOptions): Promise<{ stream: AsyncIterable<Buffer>; size: number | undefined }> {
  if (path === STDIN) return { stream: (options.stdin ?? process.stdin) as AsyncIterable<Buffer>, size: undefined };
  let size: number | undefined;
  try {
    const info = await stat(path);
    if (info.isDirectory()) throw new InputError(`${path} is a directory, not a file`);
    size = info.isFile() ? info.size : undefined;
  } catch (error) {
    if (error instanceof InputError) throw error;
    throw new InputError(`cannot read ${path}: ${describeFsError(error)}`);
  }
  return { stream: createReadStream(path), size };
}

function describeFsError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES') return 'permission denied';
  return errorMessage(error);
}

/** The first bytes of a stream, and the stream again from its start. */
async function peek(source: AsyncIterable<Buffer>): Promise<{ sample: Buffer; complete: boolean; replay: Readable }> {
  const iterator = source[Symbol.asyncIterator]();
  const head: Buffer[] = [];
  let bytes = 0;
  let complete = false;
  while (bytes < SAMPLE_BYTES) {
    const next = await iterator.next();
    if (next.done === true) {
      complete = true;
      break;
    }
    const chunk = typeof next.value === 'string' ? Buffer.from(next.value) : next.value;
    head.push(chunk);
    bytes += chunk.length;
  }
  async function* again() {
    yield* head;
    if (complete) return;
    for (let next = await iterator.next(); next.done !== true; next = await iterator.next()) yield next.value;
  }
  return { sample: Buffer.concat(head), complete, replay: Readable.from(again(), { objectMode: false }) };
}

const isGzip = (sample: Buffer) => sample.length >= 2 && sample[0] === 0x1f && sample[1] === 0x8b;

/**
 * Reads every input in turn into `collector` (standard input for `-`), each in its given or detected format.
 * Throws InputError for an input that cannot be read as addresses: missing, binary, a CSV column it lacks,
 * CSV or JSON that does not parse.
 */
export async function readInputs(paths: readonly string[], collector: AddressCollector, options: ReadOptions = {}): Promise<void> {
  for (const path of paths.length === 0 ? [STDIN] : paths) await readInput(path, collector, options);
}

async function readInput(path: string, collector: AddressCollector, options: ReadOptions): Promise<void> {
  const name = displayName(path);
  const opened = await open(path, options);
  let bytes = 0;
  // Known once the format is: until then nothing is reported.
  const reading: { tally?: InputTally } = {};
  const counted = (async function* () {
    for await (const chunk of opened.stream) {
      bytes += chunk.length;
      if (reading.tally) options.progress?.({ name, bytes, size: opened.size, tally: reading.tally });
      yield chunk;
    }
  })();

  let { sample, complete, replay } = await peek(counted);
  if (isGzip(sample)) ({ sample, complete, replay } = await peek(replay.pipe(createGunzip())));
  const text = checkText(sample, name, complete);
  const detected: Detected =
    options.format === undefined
      ? detectFormat(text, path.replace(/\.gz$/i, ''))
      : { format: options.format, ...(options.format === 'csv' ? { delimiter: detectDelimiter(text) ?? ',' } : {}) };
  checkOptions(detected.format, options, name);

  const unit = detected.format === 'json' ? (text.trimStart().startsWith('[') ? 'element' : 'value') : 'line';
  const tally = collector.input(name, unit, describeFormat(detected));
  reading.tally = tally;
  try {
    switch (detected.format) {
      case 'plain':
        await readLines(replay, new PlainReader(collector, tally));
        break;
      case 'ndjson':
        await readNdjson(replay, new JsonReader(collector, tally, options.field, options.notice));
        break;
      case 'csv':
        await readCsv(replay, detected.delimiter ?? ',', new CsvReader(collector, tally, options.column, options.notice));
        break;
      case 'json':
        await readJson(replay, unit === 'element', new JsonReader(collector, tally, options.field, options.notice));
        break;
    }
  } catch (error) {
    if (error instanceof InputError) throw error;
    if (error instanceof CsvError) throw new InputError(`${name} is not valid CSV: ${error.message}`);
    if ((error as NodeJS.ErrnoException).code === 'Z_DATA_ERROR') throw new InputError(`${name} is not valid gzip: ${errorMessage(error)}`);
    if (detected.format === 'json') throw new InputError(`${name} is not valid JSON: ${errorMessage(error)}`);
    throw error;
  }
  options.progress?.({ name, bytes, size: opened.size, tally });
}

function checkOptions(format: InputFormat, options: ReadOptions, name: string): void {
  const given = options.format === undefined ? `${name} was read as ${format} (--input chooses)` : `the input is ${format}`;
  if (options.column !== undefined && format !== 'csv') throw new InputError(`--column is for CSV input, but ${given}`);
  if (options.field !== undefined && format !== 'ndjson' && format !== 'json') {
    throw new InputError(`--field is for NDJSON or JSON input, but ${given}`);
  }
}

function lines(stream: Readable): AsyncIterable<string> {
  return createInterface({ input: stream, crlfDelay: Infinity });
}

async function readLines(stream: Readable, reader: PlainReader): Promise<void> {
  let number = 0;
  for await (const line of lines(stream)) reader.read(number === 0 ? line.replace(/^\uFEFF/, '') : line, ++number);
  reader.end();
}

async function readNdjson(stream: Readable, reader: JsonReader): Promise<void> {
  let number = 0;
  for await (const raw of lines(stream)) {
    number += 1;
    const line = number === 1 ? raw.replace(/^\uFEFF/, '') : raw;
    if (line.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      reader.unreadable(number);
      continue;
    }
    reader.read(value, number);
  }
  reader.end();
}

async function readCsv(stream: Readable, delimiter: string, reader: CsvReader): Promise<void> {
  const parser = parseCsv({ delimiter, ...CSV_OPTIONS });
  stream.once('error', (error) => parser.destroy(error));
  for await (const item of stream.pipe(parser) as AsyncIterable<{ record: string[]; info: { lines: number } }>) {
    reader.read(item.record, item.info.lines);
  }
  reader.end();
}

async function readJson(stream: Readable, array: boolean, reader: JsonReader): Promise<void> {
  // An array is streamed element by element; anything else as a sequence of whole values (one document,
  // or several, as `jq .` prints them).
  const values: Duplex = array ? streamArray.withParserAsStream() : streamValues.withParserAsStream({ jsonStreaming: true });
  stream.once('error', (error) => values.destroy(error));
  for await (const item of stream.pipe(values) as AsyncIterable<{ key: number; value: unknown }>) reader.read(item.value, item.key + 1);
  reader.end();
}
