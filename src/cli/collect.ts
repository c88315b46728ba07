import { AddressCollector, count, InputError, type InputFormat } from '../input/extract.js';
import { readInputs } from '../input/read.js';
import type { Progress } from './progress.js';

export interface CollectOptions {
  input?: InputFormat;
  column?: string;
  field?: string;
}

/**
 * Reads the inputs with progress, says what each held, and refuses a set of inputs without a single address
 * (exit 2). Lines without an address are only reported.
 */
export async function collectAddresses(files: readonly string[], options: CollectOptions, progress: Progress): Promise<AddressCollector> {
  const collector = new AddressCollector();
  await readInputs(files, collector, {
    format: options.input,
    column: options.column,
    field: options.field,
    notice: (message) => progress.notice(message),
    progress: (read) => progress.reading(read),
  });
  progress.settle();
  for (const tally of collector.inputs) {
    if (tally.addresses === 0) continue;
    const misses = tally.misses > 0 ? `; ${tally.describeMisses()}` : '';
    progress.notice(`${tally.name} (${tally.format}): ${count(tally.items, tally.unit)}, ${count(tally.addresses, 'address', 'addresses')}${misses}`);
  }
  if (collector.unique === 0) throw new InputError(nothingFound(collector));
  const empty = collector.inputs.filter((tally) => tally.addresses === 0);
  for (const tally of empty) progress.notice(`${tally.name}: no address (${tally.misses > 0 ? tally.describeMisses() : 'empty'})`);
  progress.notice(`${count(collector.found, 'address', 'addresses')}, ${collector.unique.toLocaleString('en-US')} distinct`);
  return collector;
}

function nothingFound(collector: AddressCollector): string {
  if (collector.inputs.every((tally) => tally.items === 0)) {
    return `${collector.inputs.map((tally) => tally.name).join(', ')} ${collector.inputs.length === 1 ? 'is' : 'are'} empty: no address to enrich`;
  }
  const names = collector.inputs.map((tally) => tally.name).join(', ');
  const details = collector.inputs
    .map((tally) => (tally.items === 0 ? `${tally.name} is empty` : tally.describeMisses()))
    .join('; ');
  return `no IP address found in ${names}: ${details}`;
}
