import { describe, expect, it } from 'vitest';
import { authMode, durationToMs, loadConfig, withoutPassword } from '../src/config.js';

describe('configuration', () => {
  it('applies the documented defaults', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      HOST: '127.0.0.1',
      PORT: 8080,
      CYMRU_WHOIS_HOST: 'whois.cymru.com',
      CYMRU_WHOIS_PORT: 43,
      CYMRU_BATCH_SIZE: 500,
      CYMRU_MAX_CONNECTIONS: 2,
      CYMRU_TIMEOUT_MS: 30000,
      ENRICH_MAX_IPS: 10000,
      LOG_LEVEL: 'info',
      GREYNOISE_RATE: 1,
      GREYNOISE_BURST: 5,
      DSHIELD_RATE: 1,
      DSHIELD_BURST: 2,
      ENRICH_DEADLINE_MS: 10000,
      DATABASE_TIMEOUT_MS: 10000,
    });
  });

  it('converts numbers from the environment and treats empty values as unset', () => {
    expect(loadConfig({ PORT: '9000', CYMRU_BATCH_SIZE: '250', REDIS_URL: '' })).toMatchObject({ PORT: 9000, CYMRU_BATCH_SIZE: 250 });
    expect(loadConfig({ REDIS_URL: '' }).REDIS_URL).toBeUndefined();
  });

  it.each([
    ['CYMRU_BATCH_SIZE', '501', /CYMRU_BATCH_SIZE="501" is invalid: expected an integer, >= 1, <= 500/],
    ['PORT', 'eighty', /PORT="eighty" is invalid: expected an integer/],
    ['LOG_LEVEL', 'loud', /LOG_LEVEL="loud" is invalid: expected one of fatal, error, warn, info/],
    ['DATABASE_URL', 'mysql://x', /DATABASE_URL="mysql:\/\/x" is invalid/],
    ['TTL_CYMRU', '7 days', /TTL_CYMRU="7 days" is invalid/],
    ['DATABASE_TIMEOUT_MS', '0', /DATABASE_TIMEOUT_MS="0" is invalid: expected an integer, >= 100, <= 600000/],
    ['DSHIELD_CONTACT', 'セキュリティ@example.jp', /DSHIELD_CONTACT="セキュリティ@example.jp" is invalid: expected a string, at least 3 characters, matching/],
  ])('stops the boot naming %s when it is %s', (variable, value, message) => {
    expect(() => loadConfig({ [variable]: value })).toThrow(message);
  });

  it('stops the boot on a control character in a value sent as an HTTP header', () => {
    expect(() => loadConfig({ GREYNOISE_API_KEY: 'key\r\nX-Injected: 1' })).toThrow(/^GREYNOISE_API_KEY=.* is invalid.*character 4 is not printable ASCII/);
  });

  it.each([
    ['GREYNOISE_API_KEY', 'sëcret-greynoise-key', 'sëcret-greynoise-key'],
    ['METRICS_TOKEN', 'short', 'short'],
    ['REDIS_URL', 'redis//:hunter2-redis@cache:6379', 'hunter2-redis'],
    ['DATABASE_URL', 'postgresq://ipenrich:hunter2-pg@db/ipenrich', 'hunter2-pg'],
    ['DATABASE_URL', 'postgresql//ipenrich:p@ss:w@rd@db/ipenrich', 'p@ss:w@rd'],
  ])('names %s and what is wrong without printing the secret in it', (variable, value, secret) => {
    let message = '';
    try {
      loadConfig({ [variable]: value });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(new RegExp(`^${variable}=.* is invalid: expected`));
    expect(message).not.toContain(secret);
  });

  it('shows a URL in an error without its password, whatever its spelling', () => {
    expect(withoutPassword('redis//:hunter2@cache:6379')).toBe('redis//:***@cache:6379');
    expect(withoutPassword('postgresql://ipenrich:hunter2@db/ipenrich')).toBe('postgresql://ipenrich:***@db/ipenrich');
    expect(withoutPassword('postgresql://ipenrich@db/ipenrich')).toBe('postgresql://ipenrich@db/ipenrich');
    expect(withoutPassword('postgresql://db/ipenrich?user=x&password=hunter2')).toBe('postgresql://db/ipenrich?user=x&password=***');
  });

  it('requires keys by default unless HOST is a loopback address (secure by default)', () => {
    expect(authMode(loadConfig({}))).toBe('off');
    expect(authMode(loadConfig({ HOST: '::1' }))).toBe('off');
    expect(authMode(loadConfig({ HOST: '0.0.0.0' }))).toBe('keys');
    expect(authMode(loadConfig({ HOST: '10.1.2.3' }))).toBe('keys');
    expect(authMode(loadConfig({ HOST: '0.0.0.0', AUTH: 'off' }))).toBe('off');
    expect(authMode(loadConfig({ AUTH: 'keys' }))).toBe('keys');
  });

  it.each([
    ['CORS_ORIGINS', 'soc.example.org'],
    ['RECORD_RETENTION', '180 days'],
    ['RECORD_RETENTION', '0d'],
    ['AUTH', 'on'],
  ])('refuses %s=%s', (variable, value) => {
    expect(() => loadConfig({ [variable]: value })).toThrow(new RegExp(`^${variable}=`));
  });

  it('takes CORS origins and a retention', () => {
    expect(loadConfig({ CORS_ORIGINS: 'https://soc.example.org, http://localhost:3000', RECORD_RETENTION: '180d' })).toMatchObject({
      CORS_ORIGINS: 'https://soc.example.org, http://localhost:3000',
      RECORD_RETENTION: '180d',
    });
    expect(loadConfig({}).RECORD_RETENTION).toBe('off');
  });

  it('accepts any printable ASCII, spaces included, in values sent as HTTP headers', () => {
    const config = loadConfig({ DSHIELD_CONTACT: 'SOC team <soc@example.org> ~ +1 555', GREYNOISE_API_KEY: 'a1!"#$%&/=?' });
    expect(config).toMatchObject({ DSHIELD_CONTACT: 'SOC team <soc@example.org> ~ +1 555', GREYNOISE_API_KEY: 'a1!"#$%&/=?' });
  });

  it('reads durations in seconds or with a unit', () => {
    expect(durationToMs('90')).toBe(90_000);
    expect(durationToMs('15m')).toBe(900_000);
    expect(durationToMs('7d')).toBe(604_800_000);
  });
});
