/**
 * The one wire encoding for everything vaults and clients send each other: a version byte, a frame
 * kind, then a canonical binary encoding of the value (object keys sorted, integers as varints), so
 * equal values encode to equal bytes and a hash of the encoding can stand for the value. Decoding
 * is strict: a truncated, oversize, non-canonical or unknown-version frame is refused.
 */
import { isAscii } from 'node:buffer';
import { MAX_CHUNK_SIZE } from '../constants.ts';
import { SafeVaultError } from '../../api/errors.ts';
import { sha256 } from '../names.ts';

export const WIRE_VERSION = 1;
/** A chunk plus room for the message around it. */
export const MAX_FRAME_BYTES = MAX_CHUNK_SIZE + 64 * 1024;
const MAX_DEPTH = 8;

export type FrameKind = 'message' | 'reply' | 'error';
const KINDS: readonly FrameKind[] = ['message', 'reply', 'error'];

export type WireValue = null | boolean | number | string | Buffer | WireValue[] | { [key: string]: WireValue | undefined };

const Tag = { Null: 0, False: 1, True: 2, Uint: 3, NegInt: 4, Bytes: 5, Text: 6, List: 7, Map: 8 } as const;

const malformed = (why: string): never => {
  throw new SafeVaultError('bad-request', `malformed frame: ${why}`);
};

/** Byte fields this large are kept by reference until the frame is joined, not copied twice. */
const PART_MIN_BYTES = 4096;

/** Writes into one growing buffer; only large byte fields stay separate parts until `done` joins them. */
class Writer {
  readonly #parts: Buffer[] = [];
  #buf = Buffer.allocUnsafe(512);
  /** Where the bytes not yet in a part start, and where the next byte goes. */
  #start = 0;
  #at = 0;
  size = 0;

  #room(n: number): void {
    if (this.#at + n <= this.#buf.length) return;
    const used = this.#buf.subarray(this.#start, this.#at);
    this.#buf = Buffer.allocUnsafe(Math.max(2 * this.#buf.length, used.length + n));
    used.copy(this.#buf);
    [this.#start, this.#at] = [0, used.length];
  }

  byte(b: number): void {
    this.#room(1);
    this.#buf[this.#at++] = b;
    this.size++;
  }

  varint(n: number): void {
    while (n >= 0x80) {
      this.byte((n % 0x80) | 0x80);
      n = Math.floor(n / 0x80);
    }
    this.byte(n);
  }

  raw(bytes: Buffer): void {
    this.size += bytes.length;
    if (bytes.length < PART_MIN_BYTES) {
      this.#room(bytes.length);
      this.#at += bytes.copy(this.#buf, this.#at);
      return;
    }
    this.#parts.push(this.#buf.subarray(this.#start, this.#at), bytes);
    this.#start = this.#at;
  }

  done(): Buffer {
    const tail = this.#buf.subarray(this.#start, this.#at);
    // A copy even when it is one part: what is sent or kept never shares memory with what was encoded.
    return this.#parts.length === 0 ? Buffer.from(tail) : Buffer.concat([...this.#parts, tail], this.size);
  }
}

/** The UTF-8 of the strings written most (map keys, message types), encoded once. */
const TEXT_CACHE_MAX = 1024;
const textBytes = new Map<string, Buffer>();
function utf8(text: string): Buffer {
  const cached = textBytes.get(text);
  if (cached) return cached;
  const bytes = Buffer.from(text, 'utf8');
  if (text.length <= 32 && textBytes.size < TEXT_CACHE_MAX) textBytes.set(text, bytes);
  return bytes;
}

function write(w: Writer, value: WireValue, depth: number): void {
  if (depth > MAX_DEPTH) throw new TypeError('value nests too deeply to encode');
  if (value === null) return w.byte(Tag.Null);
  if (value === false) return w.byte(Tag.False);
  if (value === true) return w.byte(Tag.True);
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new TypeError(`only safe integers go on the wire, not ${value}`);
    w.byte(value < 0 ? Tag.NegInt : Tag.Uint);
    return w.varint(Math.abs(value));
  }
  if (typeof value === 'string') {
    const text = utf8(value);
    w.byte(Tag.Text);
    w.varint(text.length);
    return w.raw(text);
  }
  if (Buffer.isBuffer(value)) {
    w.byte(Tag.Bytes);
    w.varint(value.length);
    return w.raw(value);
  }
  if (Array.isArray(value)) {
    w.byte(Tag.List);
    w.varint(value.length);
    for (const item of value) write(w, item, depth + 1);
    return;
  }
  // Sorted in place and undefined fields skipped as they come: a transfer encodes tens of thousands of small maps.
  const keys = sortedKeys(Object.keys(value));
  let defined = 0;
  for (const key of keys) if (value[key] !== undefined) defined++;
  w.byte(Tag.Map);
  w.varint(defined);
  for (const key of keys) {
    const field = value[key];
    if (field === undefined) continue;
    write(w, key, depth + 1);
    write(w, field, depth + 1);
  }
}

/**
 * Sorts a map's keys in place, in the order Array.prototype.sort gives strings (by UTF-16 code
 * units): by insertion where there are few, as for most maps, since sort() allocates a work area
 * each time (a batch of decisions encodes a few maps per record).
 */
function sortedKeys(keys: string[]): string[] {
  if (keys.length > 8) return keys.sort();
  for (let i = 1; i < keys.length; i++) {
    const key = keys[i]!;
    let at = i;
    for (; at > 0 && keys[at - 1]! > key; at--) keys[at] = keys[at - 1]!;
    keys[at] = key;
  }
  return keys;
}

/** A bytes field this large, and at least half its frame, is decoded without a copy (see Reader.take). */
const SHARE_MIN_BYTES = 64 * 1024;

class Reader {
  at = 0;
  readonly bytes: Buffer;
  constructor(bytes: Buffer) {
    this.bytes = bytes;
  }

  byte(): number {
    if (this.at >= this.bytes.length) malformed('truncated');
    return this.bytes[this.at++]!;
  }

  varint(): number {
    let value = 0;
    for (let shift = 0; ; shift += 7) {
      if (shift > 49) malformed('integer too large');
      const b = this.byte();
      value += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) {
        if (b === 0 && shift > 0) malformed('non-minimal integer');
        // Eight groups hold up to 2^56: past 2^53 a double rounds, and the number read would not be the
        // one sent, nor one the encoder (digestOf included) accepts.
        if (value > Number.MAX_SAFE_INTEGER) malformed('integer too large');
        return value;
      }
    }
  }

  /** The next `length` bytes, as a view of the frame: for what is read from them and not kept. */
  view(length: number): Buffer {
    if (length > this.bytes.length - this.at) malformed('truncated');
    this.at += length;
    return this.bytes.subarray(this.at - length, this.at);
  }

  take(length: number): Buffer {
    if (length > this.bytes.length - this.at) malformed('truncated');
    // Small fields are copies, so a name kept in a table never pins the frame it came in. A field
    // that is most of the frame (a chunk's bytes) is a view of it: copying a megabyte per hop costs
    // as much as hashing it, and keeping the frame costs next to nothing more than keeping the field.
    if (length <= SMALL_COPY_BYTES) {
      // A name or a ballot, copied by hand: no view made first, nor a call into C++ for 32 bytes.
      const out = Buffer.allocUnsafe(length);
      for (let i = 0; i < length; i++) out[i] = this.bytes[this.at + i]!;
      this.at += length;
      return out;
    }
    const view = this.bytes.subarray(this.at, this.at + length);
    const out = length >= SHARE_MIN_BYTES && 2 * length >= this.bytes.length ? view : Buffer.from(view);
    this.at += length;
    return out;
  }

  /** Whether the bytes ahead are `bytes` (the caller knows they are there). */
  startsWith(bytes: Buffer): boolean {
    for (let i = 0; i < bytes.length; i++) if (this.bytes[this.at + i] !== bytes[i]) return false;
    return true;
  }
}

/** Byte fields up to this long are copied byte by byte (see Reader.take). */
const SMALL_COPY_BYTES = 64;

function read(r: Reader, depth: number): WireValue {
  if (depth > MAX_DEPTH) malformed('nested too deeply');
  const tag = r.byte();
  switch (tag) {
    case Tag.Null:
      return null;
    case Tag.False:
      return false;
    case Tag.True:
      return true;
    case Tag.Uint:
      return r.varint();
    case Tag.NegInt: {
      const n = r.varint();
      if (n === 0) malformed('negative zero');
      return -n;
    }
    case Tag.Bytes:
      return r.take(r.varint());
    case Tag.Text:
      return readText(r);
    case Tag.List: {
      const count = r.varint();
      if (count > r.bytes.length - r.at) malformed('list longer than the frame');
      const out: WireValue[] = [];
      for (let i = 0; i < count; i++) out.push(read(r, depth + 1));
      return out;
    }
    case Tag.Map: {
      const count = r.varint();
      if (count > r.bytes.length - r.at) malformed('map longer than the frame');
      const out: Record<string, WireValue> = {};
      let previous: string | undefined;
      for (let i = 0; i < count; i++) {
        if (r.byte() !== Tag.Text) malformed('map key is not text');
        const key = readText(r);
        if (previous !== undefined && !(key > previous)) malformed('map keys out of order');
        previous = key;
        const value = read(r, depth + 1);
        // A plain field even when it is named __proto__ (an assignment would set the object's prototype instead).
        if (key === '__proto__') Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
        else out[key] = value;
      }
      return out;
    }
    default:
      return malformed(`unknown tag ${tag}`);
  }
}

/**
 * Short ASCII texts read lately (map keys, message types, personas), by their length and first,
 * middle and last bytes: a batch of 128 records reads the same few keys hundreds of times, and a
 * text found here is compared in place, with no view, check or string made for it.
 */
const readTexts = new Map<number, { bytes: Buffer; text: string }>();
const READ_TEXT_MAX_BYTES = 32;
const textSlot = (bytes: Buffer, at: number, length: number): number => length * 2 ** 24 + bytes[at]! * 2 ** 16 + bytes[at + (length >> 1)]! * 2 ** 8 + bytes[at + length - 1]!;

function readText(r: Reader): string {
  const length = r.varint();
  if (length > r.bytes.length - r.at) malformed('truncated');
  const slot = length > 0 && length <= READ_TEXT_MAX_BYTES ? textSlot(r.bytes, r.at, length) : undefined;
  const known = slot === undefined ? undefined : readTexts.get(slot);
  // The slot holds the length, so a text found there is as long as the one ahead.
  if (known && r.startsWith(known.bytes)) {
    r.at += length;
    return known.text;
  }
  const bytes = r.view(length);
  // ASCII (every key and message type) is valid UTF-8 as it is; anything else must survive a round trip.
  if (isAscii(bytes)) {
    const text = bytes.toString('latin1');
    if (slot !== undefined && !known && readTexts.size < TEXT_CACHE_MAX) readTexts.set(slot, { bytes: Buffer.from(bytes), text });
    return text;
  }
  const text = bytes.toString('utf8');
  if (!Buffer.from(text, 'utf8').equals(bytes)) malformed('text is not valid UTF-8');
  return text;
}

/** The canonical encoding of a value (no frame header): what quorum keys and signatures cover. */
export function canonical(value: WireValue): Buffer {
  const w = new Writer();
  write(w, value, 0);
  return w.done();
}

/** A short key standing for a value: the hash of its canonical encoding. */
export const digestOf = (value: WireValue): string => sha256(canonical(value)).toString('hex');

export function encodeFrame(kind: FrameKind, value: WireValue): Buffer {
  const w = new Writer();
  w.byte(WIRE_VERSION);
  w.byte(KINDS.indexOf(kind));
  write(w, value, 0);
  if (w.size > MAX_FRAME_BYTES) throw new SafeVaultError('too-large', `frame of ${w.size} bytes exceeds ${MAX_FRAME_BYTES}`);
  return w.done();
}

export function decodeFrame(frame: Uint8Array): { kind: FrameKind; value: WireValue } {
  if (frame.length > MAX_FRAME_BYTES) throw new SafeVaultError('too-large', `frame of ${frame.length} bytes exceeds ${MAX_FRAME_BYTES}`);
  const r = new Reader(Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength));
  const version = r.byte();
  if (version !== WIRE_VERSION) malformed(`unknown version ${version}`);
  const kind = KINDS[r.byte()] ?? malformed('unknown frame kind');
  const value = read(r, 0);
  if (r.at !== frame.length) malformed('trailing bytes');
  return { kind, value };
}

/** Decodes the value at the start of `bytes` (no header), refusing trailing bytes. */
export function decodeCanonical(bytes: Buffer): WireValue {
  const r = new Reader(bytes);
  const value = read(r, 0);
  if (r.at !== bytes.length) malformed('trailing bytes');
  return value;
}
