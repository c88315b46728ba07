import { describe, expect, it } from 'vitest';
import {
  AddressCollector,
  checkText,
  CsvReader,
  detectFormat,
  InputError,
  JsonReader,
  PlainReader,
  valueAt,
} from '../../src/input/extract.js';

const collect = () => {
  const collector = new AddressCollector();
  return { collector, tally: collector.input('input', 'line') };
};

describe('detectFormat', () => {
  it('tells the formats apart from their first bytes', () => {
    expect(detectFormat('# attackers\n192.0.2.1\n2001:db8::1\n').format).toBe('plain');
    expect(detectFormat('ts,src,dst\n1,192.0.2.1,10.0.0.1\n')).toEqual({ format: 'csv', delimiter: ',' });
    expect(detectFormat('ts\tsrc\n1\t192.0.2.1\n')).toEqual({ format: 'csv', delimiter: '\t' });
    expect(detectFormat('ts;src\n1;192.0.2.1\n')).toEqual({ format: 'csv', delimiter: ';' });
    expect(detectFormat('{"eventid":"cowrie.session.connect","src_ip":"192.0.2.1"}\n{"src_ip":"192.0.2.2"}\n').format).toBe('ndjson');
    expect(detectFormat('"192.0.2.1"\n"192.0.2.2"\n').format).toBe('ndjson');
    expect(detectFormat('[\n  "192.0.2.1"\n]').format).toBe('json');
    // Pretty-printed (jq .): no line is a whole object.
    expect(detectFormat('{\n  "src_ip": "192.0.2.1"\n}\n').format).toBe('json');
    expect(detectFormat('\uFEFFip\n192.0.2.1\n', 'export.csv')).toEqual({ format: 'csv', delimiter: ',' });
  });

  it('does not take a comment with a comma for CSV', () => {
    expect(detectFormat('# scanners, from the firewall\n192.0.2.1\n192.0.2.2\n').format).toBe('plain');
  });
});

describe('checkText', () => {
  it('refuses binary and non-UTF-8 input, and accepts a character cut at the end of a sample', () => {
    expect(() => checkText(Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x00, 0x01]), 'logo.png', true)).toThrow(
      /logo\.png is not a text file \(a NUL byte at offset 4\)/,
    );
    expect(() => checkText(Uint8Array.from([0x31, 0xff, 0xfe, 0x32]), 'latin.txt', true)).toThrow(/latin\.txt is not UTF-8 text/);
    const cut = new TextEncoder().encode('192.0.2.1 # café').slice(0, -1);
    expect(checkText(cut, 'cut.txt', false)).toBe('192.0.2.1 # caf');
  });
});

describe('PlainReader', () => {
  it('reads one address per line, skips comments and blank lines, and reports the rest', () => {
    const { collector, tally } = collect();
    const reader = new PlainReader(collector, tally);
    ['# list', '192.0.2.1', '', '  198.51.100.7  # noisy', 'not an address', '::ffff:192.0.2.1', '2001:DB8::1', '10.0.0.1/8'].forEach(
      (line, index) => reader.read(line, index + 1),
    );
    reader.end();
    expect([...collector.addresses()]).toEqual(['192.0.2.1', '198.51.100.7', '2001:db8::1']);
    expect(tally).toMatchObject({ items: 6, addresses: 4, misses: 2 });
    expect(tally.describeMisses()).toBe('2 lines without an address (line 5 "not an address", line 8 "10.0.0.1/8")');
  });
});

describe('CsvReader', () => {
  const read = (records: string[][], column?: string) => {
    const { collector, tally } = collect();
    const notices: string[] = [];
    const reader = new CsvReader(collector, tally, column, (message) => notices.push(message));
    records.forEach((record, index) => reader.read(record, index + 1));
    reader.end();
    return { addresses: [...collector.addresses()], tally, notices };
  };

  it('reads the named column of the header, by name in any case or by number', () => {
    const records = [
      ['time', 'Source', 'dest'],
      ['1', '192.0.2.1', '10.0.0.1'],
      ['2', 'nobody', '10.0.0.2'],
      ['3', '', '10.0.0.3'],
    ];
    const byName = read(records, 'source');
    expect(byName.addresses).toEqual(['192.0.2.1']);
    expect(byName.tally.describeMisses()).toBe('2 lines without an address (line 3 "nobody", line 4 empty column Source)');
    expect(read(records, '3').addresses).toEqual(['10.0.0.1', '10.0.0.2', '10.0.0.3']);
    expect(read([['192.0.2.9', 'x']], '1').addresses).toEqual(['192.0.2.9']);
  });

  it('refuses a column the header lacks, naming the columns it has', () => {
    expect(() => read([['time', 'src'], ['1', '192.0.2.1']], 'addr')).toThrow(InputError);
    expect(() => read([['time', 'src']], 'addr')).toThrow('input has no column "addr" (its first line holds "time", "src")');
  });

  it('without a column, reads the first that holds an address, the header skipped', () => {
    const withHeader = read([
      ['time', 'src', 'dst'],
      ['1', '192.0.2.1', '198.51.100.1'],
      ['2', '192.0.2.2', '198.51.100.2'],
    ]);
    expect(withHeader.addresses).toEqual(['192.0.2.1', '192.0.2.2']);
    expect(withHeader.tally).toMatchObject({ items: 2, misses: 0 });
    expect(withHeader.notices).toEqual(['input: reading column src (column 2); --column chooses another']);
    expect(read([['192.0.2.1', 'a'], ['192.0.2.2', 'b']]).addresses).toEqual(['192.0.2.1', '192.0.2.2']);
  });

  it('without a column, gives up when no column holds an address for a long while', () => {
    const rows = Array.from({ length: CsvReader.SEARCH_LIMIT + 1 }, (_, i) => [String(i), 'text']);
    expect(() => read(rows)).toThrow(/no column holds an IP address in the first 1000 lines; name it with --column/);
    const few = read([['a', 'b'], ['c', 'd']]);
    expect(few.addresses).toEqual([]);
    expect(few.tally.misses).toBe(2);
  });
});

describe('JsonReader', () => {
  const read = (values: unknown[], field?: string) => {
    const { collector, tally } = collect();
    const notices: string[] = [];
    const reader = new JsonReader(collector, tally, field, (message) => notices.push(message));
    values.forEach((value, index) => reader.read(value, index + 1));
    reader.end();
    return { addresses: [...collector.addresses()], tally, notices };
  };

  it("finds cowrie's src_ip before any other field holding an address", () => {
    const cowrie = [
      { eventid: 'cowrie.session.connect', dst_ip: '10.0.0.5', src_ip: '192.0.2.1', src_port: 51234, session: 'a1' },
      { eventid: 'cowrie.login.failed', src_ip: '192.0.2.2', username: 'root' },
      { eventid: 'cowrie.log.closed' },
    ];
    const result = read(cowrie);
    expect(result.addresses).toEqual(['192.0.2.1', '192.0.2.2']);
    expect(result.notices).toEqual(['input: reading field src_ip; --field chooses another']);
    expect(result.tally.describeMisses()).toBe('1 line without an address (line 3 no field src_ip)');
  });

  it('follows a dotted path, into arrays too', () => {
    expect(read([{ source: { address: '192.0.2.1' } }, { source: { address: 7 } }], 'source.address').tally.describeMisses()).toBe(
      '1 line without an address (line 2 source.address 7)',
    );
    expect(read([{ ips: ['192.0.2.1', 'x', '192.0.2.2'] }], 'ips').addresses).toEqual(['192.0.2.1', '192.0.2.2']);
    expect(valueAt({ a: [{ b: 'c' }] }, ['a', '0', 'b'])).toBe('c');
  });

  it('takes strings as addresses unless a field was named', () => {
    expect(read(['192.0.2.1', { ip: '192.0.2.2' }, 3]).addresses).toEqual(['192.0.2.1', '192.0.2.2']);
    expect(read(['192.0.2.1'], 'ip').addresses).toEqual([]);
  });
});
