import { describe, expect, it } from 'vitest';
import { ipv4Network, ipv4Text, ipv4Value } from '../../src/ip/ipv4.js';

describe('IPv4 as numbers', () => {
  it.each([
    ['0.0.0.0', 0],
    ['1.2.3.4', 0x01020304],
    ['127.0.0.1', 0x7f000001],
    ['128.0.0.0', 0x80000000],
    ['255.255.255.255', 0xffffffff],
  ])('reads %s as %i and writes it back', (text, value) => {
    expect(ipv4Value(text)).toBe(value);
    expect(ipv4Text(value)).toBe(text);
  });

  it('writes a value that bitwise arithmetic left signed', () => {
    expect(ipv4Text(0xc0a80001 | 0)).toBe('192.168.0.1');
  });

  it.each(['010.1.1.1', '1.2.3', '1.2.3.4.5', '256.1.1.1', '1.2.3.', ' 1.2.3.4', '::1'])('refuses %j', (text) => {
    expect(ipv4Value(text)).toBeNull();
  });

  it.each([
    ['203.0.113.77', 0, '0.0.0.0'],
    ['203.0.113.77', 1, '128.0.0.0'],
    ['203.0.113.77', 8, '203.0.0.0'],
    ['203.0.113.77', 17, '203.0.0.0'],
    ['203.0.113.77', 24, '203.0.113.0'],
    ['203.0.113.77', 31, '203.0.113.76'],
    ['203.0.113.77', 32, '203.0.113.77'],
    ['255.255.255.255', 32, '255.255.255.255'],
  ])('takes the network of %s with prefix length %i', (text, prefixLength, network) => {
    const value = ipv4Network(ipv4Value(text)!, prefixLength);
    expect(value).toBeGreaterThanOrEqual(0);
    expect(ipv4Text(value)).toBe(network);
  });
});
