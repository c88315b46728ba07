import { describe, expect, it } from 'vitest';
import { parseAddress } from '../../src/ip/address.js';

describe('address parsing', () => {
  it.each([
    ['8.8.8.8', '8.8.8.8'],
    [' 8.8.8.8\t', '8.8.8.8'],
    ['::ffff:8.8.8.8', '8.8.8.8'],
    ['::FFFF:1.1.1.1', '1.1.1.1'],
    ['2606:4700::1.1.1.1', '2606:4700::101:101'],
    ['2001:4860:4860:0:0:0:0:8888', '2001:4860:4860::8888'],
    ['2001:DB8:0:0:1:0:0:1'.replace('DB8', '4860'), '2001:4860::1:0:0:1'],
    ['2a00:0:0:0:0:0:0:1', '2a00::1'],
    ['2a00:1:0:1:0:1:0:1', '2a00:1:0:1:0:1:0:1'],
  ])('canonicalises %j to %s (RFC 5952 for IPv6)', (input, ip) => {
    expect(parseAddress(input)).toMatchObject({ kind: 'routable', ip });
  });

  it.each([
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['192.168.0.1', 'private'],
    ['100.64.0.1', 'cgnat'],
    ['127.0.0.1', 'loopback'],
    ['169.254.169.254', 'link-local'],
    ['0.1.2.3', 'this-network'],
    ['192.0.0.8', 'ietf-protocol-assignments'],
    ['192.0.2.1', 'documentation'],
    ['198.51.100.1', 'documentation'],
    ['203.0.113.1', 'documentation'],
    ['198.18.0.1', 'benchmarking'],
    ['224.0.0.251', 'multicast'],
    ['240.0.0.1', 'reserved'],
    ['255.255.255.255', 'broadcast'],
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['fe80::1', 'link-local'],
    ['fd00::1', 'unique-local'],
    ['ff02::1', 'multicast'],
    ['2001:db8::1', 'documentation'],
    ['2001:0:4136:e378::1', 'teredo'],
    ['100::1', 'discard-only'],
    ['::ffff:192.168.1.1', 'private'],
    ['::ffff:0.0.0.0', 'this-network'],
    ['64:ff9b::1.2.3.4', 'nat64'],
    ['4000::1', 'reserved'],
  ])('answers %s as a bogon in range %s', (input, range) => {
    expect(parseAddress(input)).toMatchObject({ kind: 'bogon', range });
  });

  it.each(['2001:4:112::1', '2001:20::1', '192.31.196.1', '1.1.1.1', '1.0.0.0', '223.255.255.254', '100.0.10.20'])('routes globally reachable %s', (input) => {
    expect(parseAddress(input)).toMatchObject({ kind: 'routable', ip: input });
  });

  it.each([
    ['010.1.1.1', /dotted-decimal/],
    ['1.2.3', /dotted-decimal/],
    ['0x8.8.8.8', /dotted-decimal/],
    ['256.1.1.1', /dotted-decimal/],
    ['1.2.3.256', /dotted-decimal/],
    ['1.2.3.4.5', /dotted-decimal/],
    ['1..2.3', /dotted-decimal/],
    ['1.2.3.', /dotted-decimal/],
    ['.1.2.3', /dotted-decimal/],
    ['1.2.03.4', /dotted-decimal/],
    ['1.2.3.0004', /dotted-decimal/],
    ['1.2.3.4a', /dotted-decimal/],
    ['１.2.3.4', /dotted-decimal/],
    ['1.1.1.1/32', /CIDR/],
    ['fe80::1%eth0', /zone/],
    ['2001:db8::g', /IPv6/],
    ['', /empty/],
    ['example.com', /dotted-decimal/],
    ['::ffff:0x8.8.8.8', /IPv4 part .*dotted-decimal/],
    ['::ffff:8.8.8.0x8', /IPv4 part .*dotted-decimal/],
    ['::ffff:010.1.1.1', /IPv4 part .*dotted-decimal/],
    ['::ffff:01.1.1.1', /IPv4 part .*dotted-decimal/],
    ['::ffff:1.2.3', /IPv4 part .*dotted-decimal/],
    ['::ffff:256.1.1.1', /IPv4 part .*dotted-decimal/],
    ['64:ff9b::1.2.03.4', /IPv4 part .*dotted-decimal/],
    ['::ffff:1.2.3.4:5', /IPv4 part .*dotted-decimal/],
  ])('refuses %j with a reason', (input, reason) => {
    const parsed = parseAddress(input);
    expect(parsed.kind).toBe('invalid');
    expect(parsed.kind === 'invalid' && parsed.error).toMatch(reason);
  });
});
