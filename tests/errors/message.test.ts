import { describe, expect, it } from 'vitest';
import { errorMessage } from '../../src/errors/message.js';

describe('errorMessage', () => {
  it('gives the message of an Error, without its name or cause', () => {
    expect(errorMessage(new TypeError('bad input', { cause: new Error('deeper') }))).toBe('bad input');
  });

  it('shows a thrown plain object as JSON, as PGlite throws its file system errors', () => {
    expect(errorMessage({ errno: 44, code: 'ENOENT' })).toBe('{"errno":44,"code":"ENOENT"}');
  });

  it('falls back to String() for what JSON cannot show, and for anything else thrown', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(errorMessage(cyclic)).toBe('[object Object]');
    expect(errorMessage('plain text')).toBe('plain text');
    expect(errorMessage(undefined)).toBe('undefined');
    expect(errorMessage(42n)).toBe('42');
  });
});
