/**
 * IPv4 addresses as unsigned 32-bit numbers. Read and written one character at a time rather than with a
 * regular expression, split() or ipaddr.js: parsing runs for every address of every request, and MaxMind
 * masks every IPv4 prefix it answers, so an array and four substrings per address would be most of the cost.
 */

const DOT = 0x2e;
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;

/**
 * The value of four decimal octets without leading zeros, or null when the text is not exactly that (no
 * "010.1.1.1", which other tools read as octal, nor "1.2.3").
 */
export function ipv4Value(text: string): number | null {
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let index = 0; index < text.length; index += 1) {
    const code = text.charCodeAt(index);
    if (code === DOT) {
      if (digits === 0 || dots === 3) return null;
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
      dots += 1;
    } else if (code >= DIGIT_0 && code <= DIGIT_9) {
      if (digits > 0 && octet === 0) return null;
      octet = octet * 10 + (code - DIGIT_0);
      digits += 1;
      if (octet > 255) return null;
    } else {
      return null;
    }
  }
  if (dots !== 3 || digits === 0) return null;
  return value * 256 + octet;
}

/** The dotted-decimal text of a 32-bit value (signed or unsigned). */
export function ipv4Text(value: number): string {
  return `${value >>> 24}.${(value >>> 16) & 255}.${(value >>> 8) & 255}.${value & 255}`;
}

/** The first address of the /prefixLength network holding `value`, as an unsigned value. */
export function ipv4Network(value: number, prefixLength: number): number {
  return prefixLength === 0 ? 0 : (value & (~0 << (32 - prefixLength))) >>> 0;
}
