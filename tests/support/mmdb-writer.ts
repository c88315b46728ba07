import { writeFile } from 'node:fs/promises';
import ipaddr from 'ipaddr.js';

/**
 * A MaxMind DB (format 2.0) writer for tests, following https://maxmind.github.io/MaxMind-DB/ so that
 * node-maxmind can read what it writes without any real MaxMind data.
 */

type NumericType = 'uint16' | 'uint32' | 'int32' | 'uint64' | 'uint128' | 'float' | 'double';

/** A number stored as a chosen MaxMind type instead of the one inferred from the JavaScript value. */
export class MmdbNumber {
  constructor(
    readonly type: NumericType,
    readonly value: number | bigint,
  ) {}
}

export const mmdb = {
  uint16: (value: number) => new MmdbNumber('uint16', value),
  uint32: (value: number) => new MmdbNumber('uint32', value),
  int32: (value: number) => new MmdbNumber('int32', value),
  uint64: (value: bigint) => new MmdbNumber('uint64', value),
  uint128: (value: bigint) => new MmdbNumber('uint128', value),
  float: (value: number) => new MmdbNumber('float', value),
  double: (value: number) => new MmdbNumber('double', value),
};

/**
 * Plain values map to the types MaxMind itself uses for them: integers to uint32 (int32 when negative),
 * other numbers to double, bigint to uint64 (uint128 when larger), Uint8Array to bytes.
 */
export type MmdbValue =
  | string
  | number
  | boolean
  | bigint
  | Uint8Array
  | MmdbNumber
  | MmdbValue[]
  | { [key: string]: MmdbValue };

export type MmdbMap = { [key: string]: MmdbValue };

export interface MmdbNetwork {
  cidr: string;
  /** Networks sharing one object share one data record, as in MaxMind's own files. */
  data: MmdbMap;
}

export interface MmdbOptions {
  databaseType: string;
  /** Seconds since the Unix epoch. */
  buildEpoch: number;
  ipVersion?: 4 | 6;
  recordSize?: 24 | 28 | 32;
  languages?: string[];
  description?: Record<string, string>;
  /** Overlaps resolve as in a routing table: the most specific network wins, whatever the order. */
  networks: MmdbNetwork[];
}

enum Type {
  Pointer = 1,
  Utf8String = 2,
  Double = 3,
  Bytes = 4,
  Uint16 = 5,
  Uint32 = 6,
  Map = 7,
  Int32 = 8,
  Uint64 = 9,
  Uint128 = 10,
  Array = 11,
  Boolean = 14,
  Float = 15,
}

const DATA_SECTION_SEPARATOR = Buffer.alloc(16);
const METADATA_MARKER = Buffer.concat([Buffer.from([0xab, 0xcd, 0xef]), Buffer.from('MaxMind.com')]);
/** Beyond this a pointer needs the 32-bit form; writing such a string again is simpler than one more case. */
const MAX_POINTER_OFFSET = 526_336 + 2 ** 27;

function controlBytes(type: Type, size: number): number[] {
  let sizeBits: number;
  let extra: number[];
  if (size < 29) {
    sizeBits = size;
    extra = [];
  } else if (size < 285) {
    sizeBits = 29;
    extra = [size - 29];
  } else if (size < 65_821) {
    sizeBits = 30;
    extra = bigEndian(BigInt(size - 285), 2);
  } else if (size < 65_821 + 2 ** 24) {
    sizeBits = 31;
    extra = bigEndian(BigInt(size - 65_821), 3);
  } else {
    throw new RangeError(`a field of ${size} bytes or entries is too large for a MaxMind DB`);
  }
  // Only types up to map (7) fit in the three type bits; the rest are "extended" into the next byte.
  const head = type <= Type.Map ? [(type << 5) | sizeBits] : [sizeBits, type - 7];
  return [...head, ...extra];
}

function bigEndian(value: bigint, length: number): number[] {
  const bytes = new Array<number>(length);
  let rest = value;
  for (let i = length - 1; i >= 0; i--) {
    bytes[i] = Number(rest & 0xffn);
    rest >>= 8n;
  }
  return bytes;
}

/** Unsigned integers drop their leading zero bytes; zero has no payload at all. */
function minimalBigEndian(value: bigint): number[] {
  const bytes: number[] = [];
  for (let rest = value; rest > 0n; rest >>= 8n) bytes.unshift(Number(rest & 0xffn));
  return bytes;
}

function pointerBytes(offset: number): number[] {
  if (offset < 2048) return [0x20 | (offset >> 8), offset & 0xff];
  if (offset < 526_336) {
    const value = offset - 2048;
    return [0x20 | (1 << 3) | (value >> 16), ...bigEndian(BigInt(value & 0xffff), 2)];
  }
  const value = offset - 526_336;
  return [0x20 | (2 << 3) | (value >>> 24), ...bigEndian(BigInt(value & 0xffffff), 3)];
}

function checkInteger(value: number | bigint, min: bigint, max: bigint, type: NumericType): bigint {
  if (typeof value === 'number' && !Number.isInteger(value)) throw new RangeError(`${type} needs an integer, got ${value}`);
  const integer = BigInt(value);
  if (integer < min || integer > max) throw new RangeError(`${String(value)} is out of range for ${type}`);
  return integer;
}

/** The data section (or the metadata map): MaxMind's self-describing type encoding, appended in order. */
class DataEncoder {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private readonly stringOffsets = new Map<string, number>();
  private readonly recordOffsets = new Map<MmdbMap, number>();

  /** Pointers are relative to the start of the data section, so the metadata map is written without them. */
  constructor(private readonly usePointers: boolean) {}

  offsetOf(record: MmdbMap): number {
    const known = this.recordOffsets.get(record);
    if (known !== undefined) return known;
    const offset = this.size;
    this.write(record);
    this.recordOffsets.set(record, offset);
    return offset;
  }

  toBuffer(): Buffer {
    return Buffer.concat(this.chunks);
  }

  private push(bytes: number[] | Buffer): void {
    const chunk = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes);
    this.chunks.push(chunk);
    this.size += chunk.length;
  }

  private write(value: MmdbValue): void {
    if (typeof value === 'string') return this.writeString(value);
    if (typeof value === 'boolean') return this.push(controlBytes(Type.Boolean, value ? 1 : 0));
    if (typeof value === 'bigint') {
      return this.writeNumber(new MmdbNumber(value < 2n ** 64n ? 'uint64' : 'uint128', value));
    }
    if (typeof value === 'number') {
      if (!Number.isInteger(value)) return this.writeNumber(mmdb.double(value));
      return this.writeNumber(value < 0 ? mmdb.int32(value) : mmdb.uint32(value));
    }
    if (value instanceof MmdbNumber) return this.writeNumber(value);
    if (value instanceof Uint8Array) {
      this.push(controlBytes(Type.Bytes, value.length));
      return this.push(Buffer.from(value));
    }
    if (Array.isArray(value)) {
      this.push(controlBytes(Type.Array, value.length));
      for (const item of value) this.write(item);
      return;
    }
    const entries = Object.entries(value);
    this.push(controlBytes(Type.Map, entries.length));
    for (const [key, item] of entries) {
      this.writeString(key);
      this.write(item);
    }
  }

  private writeString(text: string): void {
    const earlier = this.stringOffsets.get(text);
    if (earlier !== undefined) return this.push(pointerBytes(earlier));
    if (this.usePointers && this.size < MAX_POINTER_OFFSET) this.stringOffsets.set(text, this.size);
    const bytes = Buffer.from(text, 'utf8');
    this.push(controlBytes(Type.Utf8String, bytes.length));
    this.push(bytes);
  }

  private writeNumber({ type, value }: MmdbNumber): void {
    switch (type) {
      case 'uint16':
        return this.writeUnsigned(Type.Uint16, checkInteger(value, 0n, 0xffffn, type));
      case 'uint32':
        return this.writeUnsigned(Type.Uint32, checkInteger(value, 0n, 0xffff_ffffn, type));
      case 'uint64':
        return this.writeUnsigned(Type.Uint64, checkInteger(value, 0n, 2n ** 64n - 1n, type));
      case 'uint128':
        return this.writeUnsigned(Type.Uint128, checkInteger(value, 0n, 2n ** 128n - 1n, type));
      case 'int32': {
        const integer = checkInteger(value, -(2n ** 31n), 2n ** 31n - 1n, type);
        // Only a negative value needs all four bytes of its two's complement.
        const bytes = integer < 0n ? bigEndian(BigInt.asUintN(32, integer), 4) : minimalBigEndian(integer);
        this.push(controlBytes(Type.Int32, bytes.length));
        return this.push(bytes);
      }
      case 'float': {
        const bytes = Buffer.alloc(4);
        bytes.writeFloatBE(Number(value));
        this.push(controlBytes(Type.Float, 4));
        return this.push(bytes);
      }
      case 'double': {
        const bytes = Buffer.alloc(8);
        bytes.writeDoubleBE(Number(value));
        this.push(controlBytes(Type.Double, 8));
        return this.push(bytes);
      }
    }
  }

  private writeUnsigned(type: Type, value: bigint): void {
    const bytes = minimalBigEndian(value);
    this.push(controlBytes(type, bytes.length));
    this.push(bytes);
  }
}

class Leaf {
  constructor(readonly data: MmdbMap) {}
}

type TreeRecord = TreeNode | Leaf | null;

class TreeNode {
  records: [TreeRecord, TreeRecord];
  constructor(left: TreeRecord, right: TreeRecord) {
    this.records = [left, right];
  }
}

/** The network's bits as they sit in the tree; IPv4 goes under ::/96 in an IPv6 tree, as MaxMind does. */
function networkBits(cidr: string, ipVersion: 4 | 6): number[] {
  const [address, prefixLength] = ipaddr.parseCIDR(cidr);
  const isV4 = address.kind() === 'ipv4';
  const network = isV4 ? ipaddr.IPv4.networkAddressFromCIDR(cidr) : ipaddr.IPv6.networkAddressFromCIDR(cidr);
  if (network.toString() !== address.toString()) throw new Error(`${cidr} has host bits set`);
  if (!isV4 && ipVersion === 4) throw new Error(`${cidr} does not fit an IPv4 database`);
  const bytes = isV4 && ipVersion === 6 ? [...new Array<number>(12).fill(0), ...address.toByteArray()] : address.toByteArray();
  const depth = bytes.length * 8 - (isV4 ? 32 : 128) + prefixLength;
  const bits: number[] = [];
  for (let i = 0; i < depth; i++) bits.push(((bytes[i >> 3] ?? 0) >> (7 - (i & 7))) & 1);
  return bits;
}

function buildTree(networks: MmdbNetwork[], ipVersion: 4 | 6): TreeNode {
  const root = new TreeNode(null, null);
  const placed = networks
    .map((network) => ({ bits: networkBits(network.cidr, ipVersion), leaf: new Leaf(network.data) }))
    // Less specific first, so a more specific network later carves its hole out of the wider one.
    .sort((a, b) => a.bits.length - b.bits.length);
  for (const { bits, leaf } of placed) {
    if (bits.length === 0) {
      root.records = [leaf, leaf];
      continue;
    }
    let node = root;
    for (const bit of bits.slice(0, -1)) {
      const next = node.records[bit as 0 | 1];
      if (next instanceof TreeNode) {
        node = next;
      } else {
        // Splitting a leaf (or an empty record) in two keeps the rest of it where it was.
        const child = new TreeNode(next, next);
        node.records[bit as 0 | 1] = child;
        node = child;
      }
    }
    node.records[bits.at(-1) as 0 | 1] = leaf;
  }
  return root;
}

function numberNodes(root: TreeNode): TreeNode[] {
  const order: TreeNode[] = [root];
  for (let i = 0; i < order.length; i++) {
    for (const record of order[i]!.records) if (record instanceof TreeNode) order.push(record);
  }
  return order;
}

function writeNode(tree: Buffer, offset: number, recordSize: 24 | 28 | 32, left: number, right: number): void {
  if (recordSize === 24) {
    tree.writeUIntBE(left, offset, 3);
    tree.writeUIntBE(right, offset + 3, 3);
  } else if (recordSize === 28) {
    tree.writeUIntBE(left & 0xffffff, offset, 3);
    tree[offset + 3] = ((left >>> 24) << 4) | (right >>> 24);
    tree.writeUIntBE(right & 0xffffff, offset + 4, 3);
  } else {
    tree.writeUInt32BE(left, offset);
    tree.writeUInt32BE(right, offset + 4);
  }
}

export function buildMmdb(options: MmdbOptions): Buffer {
  const ipVersion = options.ipVersion ?? 6;
  const recordSize = options.recordSize ?? 24;
  const nodes = numberNodes(buildTree(options.networks, ipVersion));
  const nodeNumbers = new Map(nodes.map((node, index) => [node, index]));
  const nodeCount = nodes.length;
  const data = new DataEncoder(true);
  const maxRecord = 2 ** recordSize - 1;
  const recordValue = (record: TreeRecord): number => {
    const value =
      record === null
        ? nodeCount
        : record instanceof Leaf
          ? nodeCount + DATA_SECTION_SEPARATOR.length + data.offsetOf(record.data)
          : nodeNumbers.get(record)!;
    if (value > maxRecord) throw new RangeError(`record value ${value} does not fit ${recordSize} bits`);
    return value;
  };
  const nodeBytes = recordSize / 4;
  const tree = Buffer.alloc(nodeCount * nodeBytes);
  nodes.forEach((node, index) => {
    writeNode(tree, index * nodeBytes, recordSize, recordValue(node.records[0]), recordValue(node.records[1]));
  });

  const metadata = new DataEncoder(false);
  metadata.offsetOf({
    binary_format_major_version: mmdb.uint16(2),
    binary_format_minor_version: mmdb.uint16(0),
    build_epoch: mmdb.uint64(BigInt(options.buildEpoch)),
    database_type: options.databaseType,
    description: options.description ?? { en: `${options.databaseType} test database` },
    ip_version: mmdb.uint16(ipVersion),
    languages: options.languages ?? ['en'],
    node_count: mmdb.uint32(nodeCount),
    record_size: mmdb.uint16(recordSize),
  });
  return Buffer.concat([tree, DATA_SECTION_SEPARATOR, data.toBuffer(), METADATA_MARKER, metadata.toBuffer()]);
}

export async function writeMmdb(path: string, options: MmdbOptions): Promise<void> {
  await writeFile(path, buildMmdb(options));
}
