import ipaddr from 'ipaddr.js';
import { ipv4Network, ipv4Value } from './ipv4.js';

export type ParsedAddress =
  | { kind: 'routable'; ip: string; version: 4 | 6 }
  | { kind: 'bogon'; ip: string; version: 4 | 6; range: string }
  | { kind: 'invalid'; error: string };

/*
 * A bogon is an address no source can say anything about because it is not globally reachable. The tables
 * follow the "Globally Reachable" column (RFC 6890, RFC 8190) of IANA's IPv4 and IPv6 Special-Purpose
 * Address Registries as they stood at the end of 2024, the latest rows followed being 3fff::/20 (RFC 9637),
 * 2001:1::3/128 (RFC 9665) and 5f00::/16 (RFC 9602). A block whose column says False is a bogon; a more
 * specific row inside it that says False too (0.0.0.0/32, 192.0.0.0/29, 192.0.0.8/32, 192.0.0.170/32,
 * 192.0.0.171/32) answers the block's name; one that says True is an exception, routed like any other
 * address. Rows that say True outside every bogon block (192.31.196.0/24 AS112-v4, 192.52.193.0/24 AMT,
 * 192.175.48.0/24 and 2620:4f:8000::/48 AS112 direct delegation) need no row here.
 */

interface Ipv4Range {
  network: number;
  prefixLength: number;
  name: string;
}

/** IPv4 ranges as numbers: lists of 10,000 addresses are parsed per request. */
function ipv4Table(entries: Array<[string, string]>): Ipv4Range[] {
  return entries.map(([cidr, name]) => {
    const [address = '', bits = ''] = cidr.split('/');
    const prefixLength = Number(bits);
    return { network: ipv4Network(ipv4Value(address)!, prefixLength), prefixLength, name };
  });
}

type Ipv6Range = { cidr: [ipaddr.IPv6, number]; name: string };

function ipv6Table(entries: Array<[string, string]>): Ipv6Range[] {
  return entries.map(([cidr, name]) => ({ cidr: ipaddr.IPv6.parseCIDR(cidr), name }));
}

/**
 * The IPv4 registry's blocks that are not globally reachable, with multicast, and 192.88.99.0/24: the
 * registry marks the former 6to4 relay anycast block deprecated rather than unreachable (RFC 7526), and
 * Team Cymru still lists it as a bogon.
 */
const IPV4_BOGONS = ipv4Table([
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

/** The IPv4 registry's globally reachable rows inside the blocks above. */
const IPV4_GLOBAL_EXCEPTIONS = ipv4Table([
  ['192.0.0.9/32', 'port-control-protocol-anycast'],
  ['192.0.0.10/32', 'traversal-using-relays-anycast'],
]);

/**
 * The IPv6 registry's globally reachable rows inside blocks that are not: 64:ff9b::/96 lies in space
 * outside global unicast, the others inside 2001::/23.
 */
const IPV6_GLOBAL_EXCEPTIONS = ipv6Table([
  ['64:ff9b::/96', 'nat64'],
  ['2001:1::1/128', 'port-control-protocol-anycast'],
  ['2001:1::2/128', 'traversal-using-relays-anycast'],
  ['2001:1::3/128', 'dns-sd-srp-anycast'],
  ['2001:3::/32', 'amt'],
  ['2001:4:112::/48', 'as112-v6'],
  ['2001:20::/28', 'orchid-v2'],
  ['2001:30::/28', 'drone-remote-id'],
]);

/**
 * Inside global unicast 2000::/3. Two rows of the registry say N/A rather than True or False: Teredo
 * (2001::/32) stays a bogon, because its address holds the Teredo server's IPv4 address and, obfuscated,
 * the client's, so a source would answer for the server rather than the host; 6to4 (2002::/16) stays
 * routed, because its address holds the site's own public IPv4 address, which MaxMind's databases answer for.
 */
const IPV6_BOGONS = ipv6Table([
  ['2001:db8::/32', 'documentation'],
  ['3fff::/20', 'documentation'],
  ['2001::/32', 'teredo'],
  ['2001:2::/48', 'benchmarking'],
  ['2001::/23', 'ietf-protocol-assignments'],
]);

/**
 * Outside global unicast every address is a bogon (the IPv6 Address Space registry reserves the rest);
 * these rows name the ranges for a clearer answer than "reserved". Site-local fec0::/10 (deprecated by
 * RFC 3879) and multicast come from that registry, the others from the special-purpose one.
 */
const IPV6_OUTSIDE_UNICAST = ipv6Table([
  ['::/128', 'unspecified'],
  ['::1/128', 'loopback'],
  ['64:ff9b:1::/48', 'nat64-local'],
  ['100::/64', 'discard-only'],
  ['5f00::/16', 'srv6-sids'],
  ['fc00::/7', 'unique-local'],
  ['fe80::/10', 'link-local'],
  ['fec0::/10', 'site-local'],
  ['ff00::/8', 'multicast'],
]);

const GLOBAL_UNICAST_V6 = ipaddr.IPv6.parseCIDR('2000::/3');

function findIpv4Range(value: number, ranges: Ipv4Range[]): string | undefined {
  for (const range of ranges) {
    if (ipv4Network(value, range.prefixLength) === range.network) return range.name;
  }
  return undefined;
}

function findIpv6Range(address: ipaddr.IPv6, ranges: Ipv6Range[]): string | undefined {
  for (const range of ranges) {
    if (address.match(range.cidr)) return range.name;
  }
  return undefined;
}

// The exceptions are looked at only for an address inside a bogon block, so a routed address, nearly
// every address asked about, costs no more than before they existed.
function ipv4BogonRange(value: number): string | undefined {
  const range = findIpv4Range(value, IPV4_BOGONS);
  return range !== undefined && findIpv4Range(value, IPV4_GLOBAL_EXCEPTIONS) === undefined ? range : undefined;
}

function ipv6BogonRange(address: ipaddr.IPv6): string | undefined {
  const range = address.match(GLOBAL_UNICAST_V6)
    ? findIpv6Range(address, IPV6_BOGONS)
    : (findIpv6Range(address, IPV6_OUTSIDE_UNICAST) ?? 'reserved');
  return range !== undefined && findIpv6Range(address, IPV6_GLOBAL_EXCEPTIONS) === undefined ? range : undefined;
}

/** A dotted-decimal address is already canonical: the text is the answer's `ip`. */
function parseDottedDecimal(text: string): ParsedAddress | null {
  const value = ipv4Value(text);
  if (value === null) return null;
  const range = ipv4BogonRange(value);
  return range ? { kind: 'bogon', ip: text, version: 4, range } : { kind: 'routable', ip: text, version: 4 };
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
    const ip = v6.toIPv4Address().toString();
    const range = ipv4BogonRange(ipv4Value(ip)!);
    return range ? { kind: 'bogon', ip, version: 4, range } : { kind: 'routable', ip, version: 4 };
  }
  const ip = v6.toRFC5952String();
  const range = ipv6BogonRange(v6);
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
