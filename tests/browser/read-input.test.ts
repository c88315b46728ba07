import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { AddressCollector, type InputTally } from '../../src/input/extract.js';
import { readInputs } from '../../src/input/read.js';
import { extractFile, extractText } from '../../web/src/read-input.js';
import { tempFiles } from '../support/temp-files.js';

/*
 * The page reads what it is given by the command's rules: for the same text, web/src/read-input.ts (a string,
 * in the browser) and src/input/read.ts (a stream, in the command) find the same addresses and say the same
 * about the lines that held none.
 */

const temp = tempFiles('ipenrich-web-read-');

const summary = (tally: InputTally) => ({
  format: tally.format,
  unit: tally.unit,
  items: tally.items,
  addresses: tally.addresses,
  misses: tally.misses,
  examples: tally.examples,
});

async function byTheCommand(name: string, content: string | Buffer, column?: string) {
  const collector = new AddressCollector();
  await readInputs([await temp.file(name, content)], collector, column === undefined ? {} : { column });
  const tally = collector.inputs[0]!;
  return { addresses: [...collector.addresses()], tally: summary(tally), misses: tally.misses > 0 ? tally.describeMisses() : '' };
}

const cowrie = (ips: string[]) =>
  `${ips
    .flatMap((ip, i) => [
      { eventid: 'cowrie.session.connect', src_ip: ip, src_port: 40000 + i, dst_ip: '10.0.0.5', dst_port: 22, session: `s${i}` },
      { eventid: 'cowrie.login.failed', src_ip: ip, username: 'root', password: '123456', session: `s${i}` },
    ])
    .map((event) => JSON.stringify(event))
    .join('\n')}\n{"eventid":"cowrie.log.rotated","message":"truncated\n`;

const INPUTS: Array<[string, string, string, string?]> = [
  ['a plain list with comments, blanks and a stranger', 'list.txt', '# scanners\n192.0.2.1\n\n192.0.2.2 # twice\n192.0.2.2\nhello\n::ffff:192.0.2.1\n'],
  ['a semicolon CSV export with a named column', 'export.csv', 'time;action;source address\n1;drop;198.51.100.7\n2;drop;not-an-ip\n3;drop;198.51.100.8\n', 'Source Address'],
  ['a CSV whose address column is found by itself', 'fw.csv', 'when,src,dst\n1,198.51.100.1,10.0.0.1\n2,"198.51.100.2",10.0.0.1\n'],
  ['a cowrie JSON log cut short by rotation', 'cowrie.json', cowrie(['203.0.113.5', '2001:db8::7', '203.0.113.6'])],
  ['a JSON array of objects and strings', 'list.json', JSON.stringify([{ ip: '192.0.2.4' }, '192.0.2.5', { ip: 'nope' }, 7])],
  ['JSON documents one after another, as jq prints them', 'jq.json', '{\n  "src_ip": "192.0.2.8"\n}\n{\n  "src_ip": "192.0.2.9"\n}\n'],
];

describe('the page reads a list', () => {
  it.each(INPUTS)('as the command does: %s', async (_what, name, content, column) => {
    const command = await byTheCommand(name, content, column);
    const page = extractText(content, name, column);
    expect({ addresses: page.addresses, tally: summary(page.tally), misses: page.tally.misses > 0 ? page.tally.describeMisses() : '' }).toEqual(command);
    expect(page.addresses.length).toBeGreaterThan(0);
  });

  it('gunzips a dropped .gz file, and names it without the extension as the command does', async () => {
    const log = cowrie(['203.0.113.9', '203.0.113.10']);
    const page = await extractFile(new File([gzipSync(log)], 'cowrie.json.gz'));
    const command = await byTheCommand('cowrie.json.gz', gzipSync(log));
    expect(page.addresses).toEqual(command.addresses);
    expect(summary(page.tally)).toEqual(command.tally);
  });

  it('refuses a file that is not text, in the words of the command', async () => {
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d]);
    await expect(extractFile(new File([png], 'logo.png'))).rejects.toThrow(/^logo\.png is not a text file \(a NUL byte at offset 8\)/);
  });
});
