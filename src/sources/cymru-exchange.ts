import { connect } from 'node:net';
import type { Asn } from '../record/model.js';

/** One bulk query's result: the rows that arrived, and why the exchange failed if it did. */
export interface QueryResult {
  rows: Map<string, Asn | null>;
  failure?: string;
}

export interface ExchangeTarget {
  host: string;
  port: number;
  timeoutMs: number;
}

/** The text of an exchange, up to its last whole line, and why it failed if it did. */
export interface RawAnswer {
  text: string;
  failure?: string;
}

/**
 * One TCP exchange with Team Cymru's bulk whois. Never rejects: failures come back with whatever lines were
 * complete. The answer is parsed by the caller, once its connection has made way for the next query.
 */
export function exchange({ host, port, timeoutMs }: ExchangeTarget, addresses: readonly string[]): Promise<RawAnswer> {
  return new Promise((resolve) => {
    let answer = '';
    let failure: string | undefined;
    const socket = connect({ host, port });
    socket.setEncoding('utf8');
    const timer = setTimeout(() => {
      failure = `timed out after ${timeoutMs} ms`;
      socket.destroy();
    }, timeoutMs);
    socket.on('connect', () => {
      socket.write(`begin\nverbose\n${addresses.join('\n')}\nend\n`);
    });
    socket.on('data', (chunk: string) => {
      answer += chunk;
    });
    socket.on('error', (error: Error) => {
      failure ??= error.message;
    });
    socket.on('close', () => {
      clearTimeout(timer);
      // A cut-off last line could still look like a row (a truncated AS name), so only whole lines count,
      // and an answer that stops mid-line was cut short however cleanly the connection closed.
      const wholeLines = answer.lastIndexOf('\n') + 1;
      if (wholeLines < answer.length) failure ??= 'the answer ended in the middle of a line';
      resolve({ text: answer.slice(0, wholeLines), ...(failure === undefined ? {} : { failure }) });
    });
  });
}
