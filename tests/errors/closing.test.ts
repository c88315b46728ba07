import { connect, type AddressInfo, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../support/app.js';
import { expectToMatchSchema } from '../support/contract.js';

interface Answer {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}

/** The HTTP/1.1 answers in what one connection received (each with a Content-Length). */
function answers(received: string): Answer[] {
  const found: Answer[] = [];
  let rest = received;
  while (rest.length > 0) {
    const end = rest.indexOf('\r\n\r\n');
    const [statusLine = '', ...lines] = rest.slice(0, end).split('\r\n');
    const headers = Object.fromEntries(
      lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]),
    );
    const length = Number(headers['content-length']);
    found.push({ statusCode: Number(statusLine.split(' ')[1]), headers, body: rest.slice(end + 4, end + 4 + length) });
    rest = rest.slice(end + 4 + length);
  }
  return found;
}

async function until(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met within 5 s');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('while the server closes', () => {
  let harness: Harness;
  let release: () => void;
  let entered = false;
  const logged: string[] = [];

  beforeAll(async () => {
    const stream = { write: (line: string) => void logged.push((JSON.parse(line) as { msg: string }).msg) };
    harness = await startHarness({ overrides: { logger: { level: 'info', stream } } });
    const held = new Promise<void>((resolve) => (release = resolve));
    // A request still in flight when close() is called, as a slow /enrich would be.
    harness.app.get('/held', { schema: { hide: true } }, async () => {
      entered = true;
      await held;
      return { held: true };
    });
    await harness.app.listen({ host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => harness.close());

  it('refuses a new request on a kept-alive connection with 503 problem+json and Connection: close', async () => {
    const { port } = harness.app.server.address() as AddressInfo;
    const socket: Socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    const ended = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.write('GET /held HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n');
    await until(() => entered);

    const closed = harness.app.close();
    // The server stops listening once the preClose hooks have run, while the held request keeps it open.
    await until(() => !harness.app.server.listening);
    socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n');
    // Answered at once, though Node sends that answer only after the first.
    await until(() => logged.includes('refused: the server is closing'));
    release();
    await ended;
    await closed;

    const [first, second] = answers(Buffer.concat(chunks).toString('utf8'));
    expect(first).toMatchObject({ statusCode: 200, body: '{"held":true}' });
    expect(second?.statusCode).toBe(503);
    expect(second?.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(second?.headers.connection).toBe('close');
    const problem = JSON.parse(second!.body) as unknown;
    expectToMatchSchema('Problem', problem);
    expect(problem).toMatchObject({ status: 503, code: 'shutting-down', title: 'Service Unavailable', instance: expect.any(String) });
  });
});
