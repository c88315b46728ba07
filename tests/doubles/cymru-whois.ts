import { once } from 'node:events';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import ipaddr from 'ipaddr.js';
import { parseAddress } from '../../src/ip/address.js';

/** One answer row as Team Cymru prints it; `asns` holds several numbers when several ASes announce the prefix. */
export interface WhoisRow {
  asns: number[];
  prefix: string;
  country: string;
  registry: string;
  allocated: string;
  name: string;
}

/**
 * How the double treats one connection. answer: the protocol; hang: read the request, never answer;
 * refuse: close as soon as the connection is accepted; garbage: answer with text holding no row;
 * resetAfterRows: send the banner, the header and that many rows (and with cutRow, the next one without
 * the end of its AS name), then reset the connection, or with cleanClose end it as if the answer were whole.
 */
export type Behaviour =
  | 'answer'
  | 'hang'
  | 'refuse'
  | 'garbage'
  | { resetAfterRows: number; cutRow?: boolean; cleanClose?: boolean };

export interface CymruWhoisOptions {
  /** Answers by canonical address; null answers `NA`. Other routable addresses get defaultRow(), bogons `NA`. */
  table?: ReadonlyMap<string, WhoisRow | null>;
  /** Addresses answered `NA` although they are routable. */
  notFound?: Iterable<string>;
  /** Wait before answering a query, plus perAddressLatencyMs for each address in it. */
  queryLatencyMs?: number;
  perAddressLatencyMs?: number;
  /** Print every row twice, as the real server sometimes does. */
  repeatRows?: boolean;
  /** How the IP column spells an address, to check that clients match rows by canonical address. */
  spell?: (ip: string) => string;
  /** Answer in the reverse of the asked order, to check that clients do not match rows by position. */
  reverseRows?: boolean;
  /** Chooses the behaviour of the connection with this index (0 for the first accepted). Default: answer. */
  behaviour?: (index: number) => Behaviour;
  /** Holds the answers until this many queries are waiting for one, then writes them all in one go. */
  answerTogether?: number;
}

export interface ConnectionRecord {
  index: number;
  behaviour: Behaviour;
  /** The address lines of the request, as the client wrote them. */
  addresses: string[];
  /** Rows written before the answer ended (repeats included). */
  rowsWritten: number;
  startedAt: number;
  /** When the request's `end` line arrived, and when the answer began to be written (Date.now). */
  askedAt: number | null;
  answeredAt: number | null;
  endedAt: number | null;
}

export interface CymruWhoisDouble {
  host: string;
  port: number;
  connections: readonly ConnectionRecord[];
  /** Most connections open at the same time, counted from accept until the server finished answering. */
  maxConcurrent(): number;
  /**
   * Formats the answer rows of these address lines ahead of time. A benchmark does this before it measures:
   * the real server's work is not on the machine under test, and the double's should not be there either.
   */
  prepare(addresses: Iterable<string>): void;
  /** Resolves once no connection is open any more (every client socket closed or destroyed). */
  idle(): Promise<void>;
  close(): Promise<void>;
}

const REGISTRIES = ['arin', 'ripencc', 'apnic', 'lacnic', 'afrinic'];
/** Time between writing the rows of a reset connection and the reset, so the client has read them. */
const RESET_DELAY_MS = 20;

/**
 * The fake answer for a routable address: the AS follows from the first octet (IPv4) or the first
 * hextet (IPv6), so tests can predict it without a table.
 */
export function defaultRow(ip: string): WhoisRow {
  // A canonical IPv4 address is its octets: splitting it spares ipaddr.js's parser, which was half the
  // double's CPU while answering a 10,000-address list, on the cores the service under test runs on.
  const address = ip.includes(':') ? (ipaddr.parse(ip) as ipaddr.IPv6) : undefined;
  if (!address) {
    const [a = 0, b = 0, c = 0] = ip.split('.').map(Number);
    return {
      asns: [1000 + a],
      prefix: `${a}.${b}.${c}.0/24`,
      country: 'US',
      registry: REGISTRIES[a % REGISTRIES.length] ?? 'arin',
      allocated: '2001-02-03',
      name: `FAKE-AS${1000 + a}, US`,
    };
  }
  const [h0 = 0, h1 = 0] = address.parts;
  const asn = 100_000 + h0;
  return {
    asns: [asn],
    prefix: `${h0.toString(16)}:${h1.toString(16)}::/32`,
    country: 'DE',
    registry: 'ripencc',
    allocated: '2005-06-07',
    name: `FAKE-V6-AS${asn} Example GmbH, DE`,
  };
}

function formatRow(ip: string, spelled: string, row: WhoisRow | null): string {
  const ipColumn = spelled.padEnd(ip.includes(':') ? 40 : 16);
  if (!row) return `NA      | ${ipColumn} | NA                  |    | other    |            | NA`;
  return [
    row.asns.join(' ').padEnd(7),
    ipColumn,
    row.prefix.padEnd(19),
    row.country.padEnd(2),
    row.registry.padEnd(8),
    row.allocated.padEnd(10),
    row.name,
  ].join(' | ');
}

function banner(): string {
  const stamp = new Date().toISOString().replace('T', ' ').slice(0, 19);
  return (
    `Bulk mode; whois.cymru.com [${stamp} +0000]\n` +
    'AS      | IP               | BGP Prefix          | CC | Registry | Allocated  | AS Name\n'
  );
}

/** A Team Cymru bulk whois server on 127.0.0.1 with an ephemeral port. */
export async function startCymruWhois(options: CymruWhoisOptions = {}): Promise<CymruWhoisDouble> {
  const notFound = new Set(options.notFound ?? []);
  const connections: ConnectionRecord[] = [];
  const sockets = new Set<Socket>();
  let answering = 0;
  let maxConcurrent = 0;
  let idleWaiters: Array<() => void> = [];
  let held: Array<() => void> = [];

  /** The answer line for an address line, or undefined when the server answers it with an error. */
  function lineFor(text: string): string | undefined {
    const parsed = parseAddress(text);
    if (parsed.kind === 'invalid') return undefined;
    const { ip } = parsed;
    const tabled = options.table?.get(ip);
    const row = tabled !== undefined ? tabled : parsed.kind === 'bogon' || notFound.has(ip) ? null : defaultRow(ip);
    return formatRow(ip, options.spell?.(ip) ?? ip, row);
  }
  const prepared = new Map<string, string>();

  function rowsFor(addresses: readonly string[]): { rows: string[]; errors: string[] } {
    const rows: string[] = [];
    const errors: string[] = [];
    addresses.forEach((text, position) => {
      const line = prepared.get(text) ?? lineFor(text);
      if (line === undefined) {
        // Line numbers count the begin and verbose lines, like the real server's.
        errors.push(`Error: no ASN or IP match on line ${position + 3}.`);
        return;
      }
      rows.push(line);
      if (options.repeatRows) rows.push(line);
    });
    return { rows: options.reverseRows ? rows.reverse() : rows, errors };
  }

  /** `rows` were made when the request was read: the query latency is the server's time to make them. */
  function respond(socket: Socket, record: ConnectionRecord, finish: () => void, { rows, errors }: ReturnType<typeof rowsFor>): void {
    record.answeredAt = Date.now();
    const { behaviour } = record;
    if (behaviour === 'hang') return;
    if (behaviour === 'garbage') {
      socket.end('<html><body>502 Bad Gateway</body></html>\n\u0000\u0001 | | |\n');
      finish();
      return;
    }
    if (typeof behaviour === 'object') {
      const sent = rows.slice(0, behaviour.resetAfterRows);
      record.rowsWritten = sent.length;
      const cut = behaviour.cutRow ? (rows[sent.length]?.slice(0, -4) ?? '') : '';
      socket.write(banner() + sent.map((row) => `${row}\n`).join('') + cut, () => {
        setTimeout(() => {
          finish();
          if (behaviour.cleanClose) socket.end();
          else socket.resetAndDestroy();
        }, RESET_DELAY_MS);
      });
      return;
    }
    record.rowsWritten = rows.length;
    socket.end(banner() + [...rows, ...errors].map((line) => `${line}\n`).join(''));
    finish();
  }

  const server = createServer((socket) => {
    const index = connections.length;
    const record: ConnectionRecord = {
      index,
      behaviour: options.behaviour?.(index) ?? 'answer',
      addresses: [],
      rowsWritten: 0,
      startedAt: Date.now(),
      askedAt: null,
      answeredAt: null,
      endedAt: null,
    };
    connections.push(record);
    sockets.add(socket);
    answering++;
    maxConcurrent = Math.max(maxConcurrent, answering);
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      answering--;
    };
    let timer: NodeJS.Timeout | undefined;
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      finish();
      record.endedAt = Date.now();
      sockets.delete(socket);
      if (sockets.size === 0) {
        for (const resolve of idleWaiters) resolve();
        idleWaiters = [];
      }
    });
    if (record.behaviour === 'refuse') {
      socket.destroy();
      return;
    }
    socket.setEncoding('utf8');
    let request = '';
    const onData = (chunk: string) => {
      request += chunk;
      const lines = request.split(/\r?\n/);
      const end = lines.indexOf('end');
      if (end === -1) return;
      socket.off('data', onData);
      record.askedAt = Date.now();
      record.addresses = lines
        .slice(0, end)
        .map((line) => line.trim())
        .filter((line) => line !== '' && line !== 'begin' && line !== 'verbose');
      const due = performance.now() + (options.queryLatencyMs ?? 0) + (options.perAddressLatencyMs ?? 0) * record.addresses.length;
      const answer = rowsFor(record.addresses);
      const answerNow = () => respond(socket, record, finish, answer);
      if (options.answerTogether !== undefined) {
        held.push(answerNow);
        if (held.length < options.answerTogether) return;
        const together = held;
        held = [];
        timer = setTimeout(() => together.forEach((respondOne) => respondOne()), Math.max(0, due - performance.now()));
        return;
      }
      timer = setTimeout(answerNow, Math.max(0, due - performance.now()));
    };
    socket.on('data', onData);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;

  return {
    host: '127.0.0.1',
    port,
    connections,
    maxConcurrent: () => maxConcurrent,
    prepare(addresses) {
      for (const text of addresses) {
        const line = lineFor(text);
        if (line !== undefined) prepared.set(text, line);
      }
    },
    idle: () =>
      sockets.size === 0 ? Promise.resolve() : new Promise<void>((resolve) => idleWaiters.push(resolve)),
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
    },
  };
}
