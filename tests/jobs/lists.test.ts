import { describe, expect, it } from 'vitest';
import { negotiate } from '../../src/routes/jobs.js';
import { parseTextList } from '../../src/jobs/text-list.js';

describe('a list sent as text', () => {
  it('takes one address per line, trimmed, and skips comments and blank lines', () => {
    expect(parseTextList('# honeypot, 2026-12-01\r\n8.8.8.8\n\n   \n 2001:db8::1 # a comment\n#9.9.9.9\nnot an ip\n')).toEqual([
      '8.8.8.8',
      '2001:db8::1',
      'not an ip',
    ]);
    expect(parseTextList('')).toEqual([]);
  });
});

describe('the form of the results', () => {
  it.each([
    [undefined, 'application/json'],
    ['*/*', 'application/json'],
    ['application/x-ndjson', 'application/x-ndjson'],
    ['text/csv;q=0.9, application/x-ndjson;q=0.5', 'text/csv'],
    ['application/json;q=0.1, text/csv', 'text/csv'],
    ['text/csv;q=0', 'application/json'],
    ['application/xml', 'application/json'],
  ])('for Accept %s is %s', (accept, type) => {
    expect(negotiate(accept)).toBe(type);
  });
});
