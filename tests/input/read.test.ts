import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { AddressCollector, InputError } from '../../src/input/extract.js';
import { readInputs, type ReadOptions } from '../../src/input/read.js';
import { tempFiles } from '../support/temp-files.js';

const temp = tempFiles('ipenrich-read-');
const file = temp.file;
const dir = temp.path;

async function read(paths: string[], options: ReadOptions = {}) {
  const collector = new AddressCollector();
  const notices: string[] = [];
  await readInputs(paths, collector, { notice: (message) => notices.push(message), ...options });
  return { addresses: [...collector.addresses()], collector, notices };
}

const COWRIE = [
  { eventid: 'cowrie.session.connect', src_ip: '192.0.2.10', src_port: 40000, dst_ip: '10.0.0.5', dst_port: 22, session: 's1' },
  { eventid: 'cowrie.login.failed', src_ip: '192.0.2.10', username: 'root', password: '123456', session: 's1' },
  { eventid: 'cowrie.session.connect', src_ip: '2001:db8::10', src_port: 40001, dst_ip: '10.0.0.5', dst_port: 22, session: 's2' },
]
  .map((event) => JSON.stringify(event))
  .join('\n');

describe('readInputs', () => {
  it('reads each format as a stream, gzip too, and de-duplicates across the inputs', async () => {
    const plain = await file('list.txt', '# scanners\n192.0.2.1\n192.0.2.2\n');
    const csv = await file('export.csv', 'time,src\n1,192.0.2.2\n2,"192.0.2.3"\n');
    const cowrie = await file('cowrie.json', `${COWRIE}\n`);
    const array = await file('list.json', JSON.stringify([{ ip: '192.0.2.4' }, { ip: '192.0.2.1' }]));
    const gzipped = await file('cowrie.json.gz', gzipSync(`${COWRIE}\n`));
    const { addresses, collector } = await read([plain, csv, cowrie, array, gzipped]);
    expect(addresses).toEqual(['192.0.2.1', '192.0.2.2', '192.0.2.3', '192.0.2.10', '2001:db8::10', '192.0.2.4']);
    expect(collector.inputs.map((tally) => [tally.format, tally.items, tally.addresses])).toEqual([
      ['plain list', 2, 2],
      ['comma-separated CSV', 2, 2],
      ['NDJSON', 3, 3],
      ['JSON', 2, 2],
      ['NDJSON', 3, 3],
    ]);
  });

  it('reads standard input for "-", in the format given', async () => {
    const stdin = Readable.from([Buffer.from('"192.0.2.1"\n'), Buffer.from('{"ip": "192.0.2.2"}\nnot json\n')]);
    const { addresses, collector } = await read(['-'], { stdin, format: 'ndjson' });
    expect(addresses).toEqual(['192.0.2.1', '192.0.2.2']);
    expect(collector.inputs[0]?.describeMisses()).toBe('1 line without an address (line 3 not JSON)');
  });

  it('streams a JSON array larger than the sample, element by element', async () => {
    const ips = Array.from({ length: 20_000 }, (_, i) => `198.51.${Math.floor(i / 256) % 256}.${i % 256}`);
    const path = await file('big.json', JSON.stringify(ips.map((ip) => ({ event: 'x'.repeat(10), ip }))));
    const { collector } = await read([path]);
    expect(collector.unique).toBe(new Set(ips).size);
    expect(collector.inputs[0]).toMatchObject({ unit: 'element', items: 20_000, misses: 0 });
  });

  it('refuses what it cannot read with a message naming the input', async () => {
    await expect(read([dir('missing.txt')])).rejects.toThrow(`cannot read ${dir('missing.txt')}: no such file`);
    await expect(read([dir()])).rejects.toThrow(`${dir()} is a directory, not a file`);
    const broken = await file('broken.json', '[{"ip": "192.0.2.1"}, {"ip": ');
    await expect(read([broken])).rejects.toThrow(new RegExp(`^${broken} is not valid JSON`));
    const quote = await file('quote.csv', 'a,b\n1,"192.0.2.1\n');
    await expect(read([quote])).rejects.toThrow(InputError);
    const plain = await file('plain.txt', '192.0.2.1\n');
    await expect(read([plain], { field: 'src_ip' })).rejects.toThrow(
      `--field is for NDJSON or JSON input, but ${plain} was read as plain (--input chooses)`,
    );
  });
});
