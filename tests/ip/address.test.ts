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

  // One address in every row of the tables in src/ip/address.ts, at the edges where a row is a block.
  it.each([
    ['0.1.2.3', 'this-network'],
    ['0.0.0.0', 'this-network'],
    ['10.1.2.3', 'private'],
    ['100.64.0.1', 'cgnat'],
    ['100.127.255.255', 'cgnat'],
    ['127.0.0.1', 'loopback'],
    ['169.254.169.254', 'link-local'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.0.0.1', 'ietf-protocol-assignments'],
    ['192.0.0.8', 'ietf-protocol-assignments'],
    ['192.0.0.11', 'ietf-protocol-assignments'],
    ['192.0.0.170', 'ietf-protocol-assignments'],
    ['192.0.0.171', 'ietf-protocol-assignments'],
    ['192.0.2.1', 'documentation'],
    ['192.88.99.1', '6to4-relay-anycast'],
    ['192.168.0.1', 'private'],
    ['198.18.0.1', 'benchmarking'],
    ['198.19.255.255', 'benchmarking'],
    ['198.51.100.1', 'documentation'],
    ['203.0.113.1', 'documentation'],
    ['224.0.0.251', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['240.0.0.1', 'reserved'],
    ['255.255.255.254', 'reserved'],
    ['255.255.255.255', 'broadcast'],
    ['::ffff:192.168.1.1', 'private'],
    ['::ffff:0.0.0.0', 'this-network'],
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['::2', 'reserved'],
    ['64:ff9b:1::1', 'nat64-local'],
    ['100::1', 'discard-only'],
    ['100:0:0:1::1', 'reserved'],
    ['5f00::1', 'srv6-sids'],
    ['5f00:ffff::1', 'srv6-sids'],
    ['fc00::1', 'unique-local'],
    ['fd00::1', 'unique-local'],
    ['fe80::1', 'link-local'],
    ['fec0::1', 'site-local'],
    ['ff02::1', 'multicast'],
    ['4000::1', 'reserved'],
    ['2001:db8::1', 'documentation'],
    ['3fff::1', 'documentation'],
    ['3fff:fff:ffff::1', 'documentation'],
    ['2001:0:4136:e378::1', 'teredo'],
    ['2001:2::1', 'benchmarking'],
    ['2001:1::4', 'ietf-protocol-assignments'],
    ['2001:10::1', 'ietf-protocol-assignments'],
    ['2001:1ff:ffff::1', 'ietf-protocol-assignments'],
  ])('answers %s as a bogon in range %s', (input, range) => {
    expect(parseAddress(input)).toMatchObject({ kind: 'bogon', range });
  });

  it.each([
    // Globally reachable rows inside bogon blocks.
    ['192.0.0.9', '192.0.0.9'],
    ['192.0.0.10', '192.0.0.10'],
    ['::ffff:192.0.0.9', '192.0.0.9'],
    ['64:ff9b::1.2.3.4', '64:ff9b::102:304'],
    ['64:ff9b::ffff:ffff', '64:ff9b::ffff:ffff'],
    ['2001:1::1', '2001:1::1'],
    ['2001:1::2', '2001:1::2'],
    ['2001:1::3', '2001:1::3'],
    ['2001:3::1', '2001:3::1'],
    ['2001:3:ffff::1', '2001:3:ffff::1'],
    ['2001:4:112::1', '2001:4:112::1'],
    ['2001:20::1', '2001:20::1'],
    ['2001:2f::1', '2001:2f::1'],
    ['2001:30::1', '2001:30::1'],
    // Globally reachable rows outside every bogon block, and the first addresses past a block.
    ['192.31.196.1', '192.31.196.1'],
    ['192.52.193.1', '192.52.193.1'],
    ['192.175.48.1', '192.175.48.1'],
    ['2620:4f:8000::1', '2620:4f:8000::1'],
    ['2002:808:808::1', '2002:808:808::1'],
    ['192.0.1.0', '192.0.1.0'],
    ['2001:200::1', '2001:200::1'],
    ['3fff:1000::1', '3fff:1000::1'],
    ['1.1.1.1', '1.1.1.1'],
    ['1.0.0.0', '1.0.0.0'],
    ['223.255.255.254', '223.255.255.254'],
    ['100.0.10.20', '100.0.10.20'],
  ])('routes globally reachable %s as %s', (input, ip) => {
    expect(parseAddress(input)).toMatchObject({ kind: 'routable', ip });
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
