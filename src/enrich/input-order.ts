import type { ParsedAddress } from '../ip/address.js';
import type { StoredRecord } from '../record/model.js';
import { routableJson, unroutedView, type Outcomes } from './record-view.js';

/**
 * Takes the answers of the next inputs, in input order, each an IpRecord serialized as JSON; called as the
 * chunks that hold their addresses finish, never twice for one input, at most `chunkSize` records a call.
 */
export type ResultsSink = (records: readonly string[]) => void;

/** What InputOrder reads of an address's work. */
export interface SettledAddress {
  ip: string;
  outcomes: Outcomes;
  /** Set once the address's work is done. */
  merged?: StoredRecord;
  /** The answer for the address spelled canonically, serialized when it settled. */
  json?: string;
}

/**
 * Hands a request's answers to its sink in input order: each time a chunk settles, every input from the
 * first one not handed over yet whose address is settled (or which needs no lookup at all), up to the first
 * one whose address's chunk is still under way.
 */
export class InputOrder {
  #next = 0;

  constructor(
    private readonly inputs: readonly string[],
    private readonly parsed: readonly ParsedAddress[],
    private readonly work: ReadonlyMap<string, SettledAddress>,
    private readonly sink: ResultsSink,
    private readonly sliceSize: number,
  ) {}

  flush(): void {
    let records: string[] = [];
    for (; this.#next < this.inputs.length; this.#next++) {
      const json = this.#answer(this.#next);
      if (json === undefined) break;
      records.push(json);
      if (records.length === this.sliceSize) {
        this.sink(records);
        records = [];
      }
    }
    if (records.length > 0) this.sink(records);
  }

  #answer(index: number): string | undefined {
    const input = this.inputs[index] as string;
    const address = this.parsed[index];
    // Not read yet: the chunk that settled is further on than the list has been read.
    if (address === undefined) return undefined;
    if (address.kind !== 'routable') return JSON.stringify(unroutedView(input, address));
    const item = this.work.get(address.ip)!;
    if (item.merged === undefined) return undefined;
    return input === item.ip ? item.json : routableJson(input, item.merged, item.outcomes);
  }
}
