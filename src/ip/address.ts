import ipaddr from 'ipaddr.js';
import { ipv4Network, ipv4Value } from './ipv4.js';

export type ParsedAddress =
  | { kind: 'routable'; ip: string; version: 4 | 6 }
  | { kind: 'bogon'; ip: string; version: 4 | 6; range: string }
  | { kind: 'invalid'; error: string };

type Cidr = [ipaddr.IPv4 | ipaddr.IPv6, number];

function table(entries: Array<[string, string]>): Array<{ cidr: Cidr; name: string }> {
  return entries.map(([cidr, name]) => ({ cidr: ipaddr.parseCIDR(cidr), name }));
}

/**
 * IANA IPv4 special-purpose registry entries that are not globally reachable (RFC 6890 and its
 * updates), plus the deprecated 6to4 relay anycast block that Team Cymru also lists as a bogon.
 */
const IPV4_BOGONS = table([
  ['0.0.0.0/8', 'this-network'],
  ['10.0.0.0/8', 'private'],
  ['100.64.0.0/10', 'cgnat'],
  ['127.0.0.0/8', 'loopback'],
  ['169.254.0.0/16', 'link-local'],
  ['172.16.0.0/12', 'private'],
  ['192.0.0.0/24', 'ietf-protocol-assignments'],
  ['192.0.2.0/24', 'documentation'],
  ['192.88.99.0/24', '6to4-relay-anycast'],
  ['192.168.0.0/16', 'private'],
  ['198.18.0.0/15', 'benchmarking'],
  ['198.51.100.0/24', 'documentation'],
  ['203.0.113.0/24', 'documentation'],
  ['224.0.0.0/4', 'multicast'],
  ['255.255.255.255/32', 'broadcast'],
  ['240.0.0.0/4', 'reserved'],
]);

/** Globally reachable exceptions inside 2001::/23 (IANA IPv6 special-purpose registry). */
const IPV6_GLOBAL_EXCEPTIONS = table([
  ['2001:1::1/128', 'port-control-protocol-anycast'],
  ['2001:1::2/128', 'traversal-using-relays-anycast'],
  ['2001:1::3/128', 'dns-sd-srp-anycast'],
  ['2001:3::/32', 'amt'],
  ['2001:4:112::/48', 'as112-v6'],
  ['2001:20::/28', 'orchid-v2'],
  ['2001:30::/28', 'drone-remote-id'],
]);

const IPV6_BOGONS = table([
  ['2001:db8::/32', 'documentation'],
  ['3fff::/20', 'documentation'],
  ['2001::/32', 'teredo'],
  ['2001:2::/48', 'benchmarking'],
  ['2001::/23', 'ietf-protocol-assignments'],
]);

/** Named ranges outside global unicast 2000::/3, for a clearer answer than "reserved". */
const IPV6_OUTSIDE_UNICAST = table([
  ['::/128', 'unspecified'],
  ['::1/128', 'loopback'],
  ['64:ff9b::/96', 'nat64'],
  ['64:ff9b:1::/48', 'nat64-local'],
  ['100::/64', 'discard-only'],
  ['fc00::/7', 'unique-local'],
  ['fe80::/10', 'link-local'],
  ['fec0::/10', 'site-local'],
  ['ff00::/8', 'multicast'],
]);

const GLOBAL_UNICAST_V6 = ipaddr.parseCIDR('2000::/3');

/** The IPv4 bogons again as integer network/mask pairs: lists of 10,000 addresses are parsed per request. */
const IPV4_BOGON_MASKS = IPV4_BOGONS.map(({ cidr: [network, bits], name }) => {
  // The network of the all-ones address is the mask itself.
  const mask = ipv4Network(0xffffffff, bits);
  return { network: ipv4Network(ipv4Value(network.toString())!, bits), mask, name };
});

/** A dotted-decimal address is already canonical: the text is the answer's `ip`. */
function parseDottedDecimal(text: string): ParsedAddress | null {
  const value = ipv4Value(text);
  if (value === null) return null;
  for (const range of IPV4_BOGON_MASKS) {
    if (((value & range.mask) >>> 0) === range.network) return { kind: 'bogon', ip: text, version: 4, range: range.name };
  }
  return { kind: 'routable', ip: text, version: 4 };
}

function findRange(address: ipaddr.IPv4 | ipaddr.IPv6, ranges: Array<{ cidr: Cidr; name: string }>) {
  for (const range of ranges) {
    if (address.kind() === range.cidr[0].kind() && address.match(range.cidr)) return range.name;
  }
  return undefined;
}

function bogonRangeV6(address: ipaddr.IPv6): string | undefined {
  if (!address.match(GLOBAL_UNICAST_V6)) return findRange(address, IPV6_OUTSIDE_UNICAST) ?? 'reserved';
  if (findRange(address, IPV6_GLOBAL_EXCEPTIONS)) return undefined;
  return findRange(address, IPV6_BOGONS);
}

/**
 * Parses one user-supplied string. Only unambiguous notations are accepted: IPv4, alone or ending an IPv6
 * address, must be four decimal octets (no "010.1.1.1", which other tools read as octal, nor "1.2.3"), and
 * IPv6 zone indexes are refused because they name a local interface, not an Internet host.
 */
export function parseAddress(input: string): ParsedAddress {
  const text = input.trim();
  if (text === '') return { kind: 'invalid', error: 'empty string' };
  if (text.includes('/')) return { kind: 'invalid', error: 'a network (CIDR) is not a single address' };
  if (text.includes('%')) return { kind: 'invalid', error: 'IPv6 zone indexes are not accepted' };
  const dotted = parseDottedDecimal(text);
  if (dotted) return dotted;
  if (!text.includes(':')) {
    return { kind: 'invalid', error: 'not an IPv4 address in dotted-decimal form (four decimal octets)' };
  }
  // ipaddr.js reads the IPv4 part of an IPv6 address leniently (hex octets, leading zeros), which would let
  // "::ffff:010.1.1.1" through as 10.1.1.1 although "010.1.1.1" alone is refused.
  if (text.includes('.') && ipv4Value(text.slice(text.lastIndexOf(':') + 1)) === null) {
    return {
      kind: 'invalid',
      error: 'the IPv4 part of an IPv6 address must end it, in dotted-decimal form (four decimal octets)',
    };
  }
  if (!ipaddr.IPv6.isValid(text)) return { kind: 'invalid', error: 'not a valid IPv6 address' };
  const v6 = ipaddr.IPv6.parse(text);
  if (v6.isIPv4MappedAddress()) {
    const v4 = v6.toIPv4Address();
    const ip = v4.toString();
    const range = findRange(v4, IPV4_BOGONS);
    return range ? { kind: 'bogon', ip, version: 4, range } : { kind: 'routable', ip, version: 4 };
  }
  const ip = v6.toRFC5952String();
  const range = bogonRangeV6(v6);
  return range ? { kind: 'bogon', ip, version: 6, range } : { kind: 'routable', ip, version: 6 };
}

/** Canonical text of an address from a trusted place (an upstream's answer), or null when it is not one. */
export function canonicalIp(text: string): string | null {
  const parsed = parseAddress(text);
  return parsed.kind === 'invalid' ? null : parsed.ip;
}

export function ipVersion(ip: string): 4 | 6 {
  return ip.includes(':') ? 6 : 4;
}
