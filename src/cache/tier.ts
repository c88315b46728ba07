import type { StoredRecord } from '../record/model.js';

/** L1: merged records by canonical address. A cache never fails a request: errors read as misses. */
export interface RecordCache {
  readonly kind: 'redis' | 'memory';
  getMany(ips: readonly string[]): Promise<Map<string, StoredRecord>>;
  /** The record if this process holds it, read synchronously; never asks a remote store. */
  peek(ip: string): StoredRecord | undefined;
  setMany(records: readonly StoredRecord[]): Promise<void>;
  /** Removes the addresses from every copy this process reaches (DELETE /ip, retention); how many were held. */
  delete(ips: readonly string[]): Promise<number>;
  /** 'degraded' while the backing store is unreachable; the service keeps answering without it. */
  health(): 'ok' | 'degraded';
  /** Cache commands that failed since start. */
  errors(): number;
  close(): Promise<void>;
}
