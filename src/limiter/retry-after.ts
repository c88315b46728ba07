const MAX_DELAY_MS = 3_600_000;

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const MONTH = `(${MONTHS.join('|')})`;
const TIME = '(\\d{2}):(\\d{2}):(\\d{2})';

/** The three HTTP-date forms of RFC 9110 §5.6.7; captures are day, month, year, hours, minutes, seconds. */
const IMF_FIXDATE = new RegExp(`^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\\d{2}) ${MONTH} (\\d{4}) ${TIME} GMT$`);
const RFC_850 = new RegExp(
  `^(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), (\\d{2})-${MONTH}-(\\d{2}) ${TIME} GMT$`,
);
const ASCTIME = new RegExp(`^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) ${MONTH} ( \\d|\\d{2}) ${TIME} (\\d{4})$`);

function utc(day: string, month: string, year: number, hours: string, minutes: string, seconds: string): number {
  return Date.UTC(year, MONTHS.indexOf(month), Number(day), Number(hours), Number(minutes), Number(seconds));
}

/**
 * Parsed by hand because Date.parse reads asctime as local time and accepts strings that are no date at all
 * (Date.parse('1.5') is a valid time in V8).
 */
function parseHttpDate(text: string, now: number): number | undefined {
  let match = IMF_FIXDATE.exec(text);
  if (match) {
    const [, day = '', month = '', year = '', h = '', m = '', s = ''] = match;
    return utc(day, month, Number(year), h, m, s);
  }
  match = ASCTIME.exec(text);
  if (match) {
    const [, month = '', day = '', h = '', m = '', s = '', year = ''] = match;
    return utc(day.trim(), month, Number(year), h, m, s);
  }
  match = RFC_850.exec(text);
  if (match) {
    const [, day = '', month = '', shortYear = '', h = '', m = '', s = ''] = match;
    // RFC 9110: a two-digit year more than 50 years in the future is in the past century.
    let year = 2000 + Number(shortYear);
    if (year > new Date(now).getUTCFullYear() + 50) year -= 100;
    return utc(day, month, year, h, m, s);
  }
  return undefined;
}

/**
 * The delay a Retry-After header asks for, in ms from `now`, clamped to [0, 1 h] so that a hostile or broken
 * upstream cannot silence a source for days; undefined when the header is absent or unusable.
 */
export function parseRetryAfter(value: string | string[] | undefined, now: number): number | undefined {
  const text = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!text) return undefined;
  let delay: number | undefined;
  if (/^\d+(\.\d+)?$/.test(text)) {
    delay = Math.ceil(Number(text) * 1000);
  } else {
    const at = parseHttpDate(text, now);
    if (at === undefined || Number.isNaN(at)) return undefined;
    delay = at - now;
  }
  return Math.min(MAX_DELAY_MS, Math.max(0, delay));
}
