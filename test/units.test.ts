/** Units for the rules the personas are built on: names, quorum, signed requests, compact records. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { test } from 'node:test';
import { deadlineOf, signRequest, verifyRequest } from '../electron/engine/clientRequest.ts';
import { MAX_CHUNK_SIZE, OP_DEADLINE_MS, QUORUM_TIMEOUT_MS, REQUEST_WINDOW_MS } from '../electron/engine/constants.ts';
import { MESSAGES, parseMessage, type Message } from '../electron/engine/messages.ts';
import { canonical, decodeCanonical, decodeFrame, digestOf, encodeFrame, MAX_FRAME_BYTES, WIRE_VERSION, type WireValue } from '../electron/engine/wire/codec.ts';
import { readReply, serveFrame } from '../electron/engine/wire/frames.ts';
import { openDatabase } from '../electron/engine/db.ts';
import { isSafeVaultError, SafeVaultError } from '../electron/api/errors.ts';
import { quorumOf } from '../electron/engine/group.ts';
import { createIdentity, loadIdentity, verifySignature } from '../electron/engine/identity.ts';
import { KeyedLock } from '../electron/engine/keyedLock.ts';
import { ClosestNames, closest, compareDistance, EVERY_NAME, inRange, sha256, type Name } from '../electron/engine/names.ts';
import { DataManagerRecords, type DataRecord } from '../electron/engine/personas/dataManagerRecords.ts';
import { systemClock } from '../electron/engine/clock.ts';
import { View } from '../electron/engine/transport.ts';
import { tempDir } from './helpers.ts';

const name = (first: number) => Buffer.alloc(32, 0).fill(first, 0, 1);

test('XOR closeness: closest() agrees with sorting by distance and honours exclude', () => {
  const target = randomBytes(32);
  const names = Array.from({ length: 50 }, () => randomBytes(32));
  const sorted = [...names].sort((a, b) => compareDistance(target, a, b));
  assert.deepEqual(closest(target, names, 4), sorted.slice(0, 4));
  assert.deepEqual(closest(target, names, 4, sorted[0]), sorted.slice(1, 5));
  assert.deepEqual(closest(target, names.slice(0, 2), 4).length, 2);
  assert.ok(compareDistance(name(0), name(1), name(2)) < 0);
  assert.ok(compareDistance(name(3), name(2), name(1)) < 0); // 3^2=1 < 3^1=2
});

test('a view: a vault is near a target among every vault it has seen exactly when closest() ranks it there, gone ones counted', () => {
  const view = new View();
  const vaults = Array.from({ length: 40 }, () => randomBytes(32));
  for (const vault of vaults) view.apply('joined', vault, true);
  for (const vault of vaults.slice(0, 10)) view.apply('left', vault, true);
  const stranger = randomBytes(32);
  for (let i = 0; i < 20; i++) {
    const target = randomBytes(32);
    for (const count of [1, 8, 32]) {
      const near = closest(target, vaults, count);
      for (const vault of vaults) assert.equal(view.isNearAmongKnown(target, vault, count), near.includes(vault));
      assert.equal(view.isNearAmongKnown(target, stranger, count), false);
    }
  }
});

test('ClosestNames answers every target as closest() does (and includes() as its list), from its memo too, however long a prefix the names share', () => {
  /** `count` names sharing their first `bits` bits with `base`, random after them. */
  const sharing = (base: Name, bits: number, count: number) =>
    Array.from({ length: count }, () => {
      const name = randomBytes(32);
      for (let i = 0; i < bits; i++) name[i >> 3] = (name[i >> 3]! & ~(0x80 >> (i & 7))) | (base[i >> 3]! & (0x80 >> (i & 7)));
      return name;
    });
  const base = randomBytes(32);
  // Random names (a short deciding prefix, so the memo answers most targets), names sharing 30 bits (a longer one), and 60 (past the memo's bits).
  for (const names of [sharing(base, 0, 64), [...sharing(base, 0, 40), ...sharing(base, 30, 8)], [...sharing(base, 60, 6), ...sharing(base, 0, 10)], [base]]) {
    const memo = new ClosestNames(names);
    // Targets near the names (as records are) and anywhere, each asked twice: the second answer comes from the memo.
    const targets = [...names.flatMap((n) => sharing(n, 20, 3)), ...sharing(base, 0, 50)];
    for (const target of [...targets, ...targets]) {
      for (const count of [1, 4, 6, 16]) {
        assert.deepEqual(memo.closest(target, count), closest(target, names, count));
        const exclude = names[target[31]! % names.length]!;
        assert.deepEqual(memo.closest(target, count, exclude), closest(target, names, count, exclude));
        // includes() reads the same lists in place: each name is among them exactly when closest() ranks it there.
        const [near, nearWithout] = [closest(target, names, count), closest(target, names, count, exclude)];
        for (const name of names.slice(0, 8)) {
          assert.equal(memo.includes(target, count, name), near.includes(name));
          assert.equal(memo.includes(target, count, name, exclude), nearWithout.includes(name));
        }
      }
    }
  }
  // A view works it out again after every change.
  const view = new View();
  const vaults = Array.from({ length: 12 }, () => randomBytes(32));
  view.seed(vaults);
  const target = randomBytes(32);
  assert.deepEqual(view.closest(target, 4), closest(target, vaults, 4));
  const nearest = closest(target, vaults, 1)[0]!;
  view.apply('left', nearest, false);
  assert.deepEqual(view.closest(target, 4), closest(target, vaults, 4, nearest));
  view.apply('joined', nearest, true);
  assert.deepEqual(view.closest(target, 4), closest(target, vaults, 4));
});

test('quorum: 3 of 4, or a majority of a network that never had a whole group; a vault cut off from a larger one never decides alone', () => {
  assert.deepEqual([1, 2, 3, 4, 5].map((size) => quorumOf(size)), [1, 2, 2, 3, 3]);
  assert.deepEqual([1, 2, 3].map((size) => quorumOf(size, 5)), [3, 3, 3]);
});

test('KeyedLock serialises work per key but not across keys', async () => {
  const lock = new KeyedLock();
  const order: string[] = [];
  const slow = (tag: string, ms: number) => async () => {
    order.push(`${tag}+`);
    await new Promise((r) => setTimeout(r, ms));
    order.push(`${tag}-`);
  };
  await Promise.all([lock.run('k', slow('a', 20)), lock.run('k', slow('b', 1)), lock.run('other', slow('c', 1))]);
  assert.ok(order.indexOf('a-') < order.indexOf('b+'), order.join(' '));
  assert.ok(order.indexOf('c+') < order.indexOf('a-'), order.join(' '));
});

test('identities and signed requests', () => {
  const alice = createIdentity();
  assert.ok(loadIdentity(alice.secret).name.equals(alice.name));
  const chunk = sha256(Buffer.from('x'));
  const request = signRequest(alice, 'delete', chunk, 0, systemClock);
  const decoded = verifyRequest(request, Date.now());
  assert.equal(decoded.op, 'delete');
  assert.ok(decoded.client.equals(alice.name) && decoded.chunk.equals(chunk));
  assert.ok(!verifySignature(alice.publicKey, Buffer.from('other'), request.signature));
  assert.ok(!verifySignature(Buffer.alloc(3), request.payload, request.signature));
  assert.throws(() => verifyRequest(request, Date.now() + 2 * REQUEST_WINDOW_MS), (e) => isSafeVaultError(e) && e.code === 'bad-request');
  assert.throws(() => verifyRequest({ ...request, payload: request.payload.subarray(1) }, Date.now()), (e) => isSafeVaultError(e) && e.code === 'bad-request');
  const tampered = Buffer.from(request.payload);
  tampered[40]! ^= 1;
  assert.throws(() => verifyRequest({ ...request, payload: tampered }, Date.now()), (e) => isSafeVaultError(e) && e.code === 'bad-signature');
});

test("a request's deadline goes downstream with it: the client's own, within bounds its clock cannot push", () => {
  const alice = createIdentity();
  const signedAt = Date.now();
  const decoded = verifyRequest(signRequest(alice, 'put', sha256(Buffer.from('x')), 1, systemClock), signedAt);
  // A minute into the operation, a group downstream has the minute the client still waits.
  assert.equal(deadlineOf(decoded, decoded.time + 60_000), decoded.time + OP_DEADLINE_MS);
  // A client clock far behind still leaves the group time to work; one far ahead never stretches past a fresh deadline.
  assert.equal(deadlineOf({ ...decoded, time: decoded.time - REQUEST_WINDOW_MS }, decoded.time), decoded.time + QUORUM_TIMEOUT_MS);
  assert.equal(deadlineOf({ ...decoded, time: decoded.time + REQUEST_WINDOW_MS }, decoded.time), decoded.time + OP_DEADLINE_MS);
});

test('data_manager records: ordered holders, holder index, key collisions refused, persisted', () => {
  const path = join(tempDir(), 'dm.sqlite');
  let db = openDatabase(path);
  let records = new DataManagerRecords(db);
  const vaults = Array.from({ length: 6 }, () => randomBytes(32));
  const chunks = Array.from({ length: 300 }, () => randomBytes(32));
  chunks.forEach((chunk, i) => records.put(chunk, { version: 1, subscribers: 1, size: 100 + i, holders: [0, 1, 2, 3].map((k) => vaults[(i + k) % 6]!) }));
  const heldBy0 = chunks.filter((_, i) => [0, 1, 2, 3].some((k) => (i + k) % 6 === 0));
  assert.deepEqual(records.chunksHeldBy(vaults[0]!).map((c) => c.toString('hex')).sort(), heldBy0.map((c) => c.toString('hex')).sort());

  // Reorder and replace holders: the index follows.
  const c = chunks[0]!;
  records.put(c, { version: 2, subscribers: 2, size: 100, holders: [vaults[5]!, vaults[0]!, vaults[1]!] });
  assert.deepEqual(records.get(c), { version: 2, subscribers: 2, size: 100, holders: [vaults[5]!, vaults[0]!, vaults[1]!] });
  assert.ok(records.chunksHeldBy(vaults[5]!).some((x) => x.equals(c)));
  assert.ok(!records.chunksHeldBy(vaults[2]!).some((x) => x.equals(c)));

  // A different chunk sharing the 8-byte key is refused, not mixed in.
  const twin = Buffer.concat([c.subarray(0, 8), randomBytes(24)]);
  assert.throws(() => records.put(twin, { version: 1, subscribers: 1, size: 1, holders: [] }), (e) => isSafeVaultError(e) && e.code === 'conflict');
  assert.equal(records.get(twin), undefined);

  records.delete(chunks[1]!);
  assert.equal(records.get(chunks[1]!), undefined);
  assert.ok(!records.chunksHeldBy(vaults[1]!).some((x) => x.equals(chunks[1]!)));
  db.close();

  db = openDatabase(path);
  records = new DataManagerRecords(db);
  assert.equal(records.count(), 299);
  assert.deepEqual(records.get(c)!.holders, [vaults[5]!, vaults[0]!, vaults[1]!]);
  // Every record comes back whole by range, names from 0x80… (negative keys) included, and a range across that line holds exactly its names.
  const all = new Map([...records.all()].map(([name, record]) => [name.toString('hex'), record]));
  assert.equal(all.size, 299);
  for (const chunk of chunks.filter((x) => !x.equals(chunks[1]!))) assert.deepEqual(all.get(chunk.toString('hex')), records.get(chunk));
  const across = { from: Buffer.alloc(32, 0x70), to: Buffer.alloc(32, 0x90) };
  const inside = chunks.filter((x) => !x.equals(chunks[1]!) && inRange(x, across)).map((x) => x.toString('hex')).sort();
  assert.ok(inside.some((hex) => hex < '80') && inside.some((hex) => hex >= '80'));
  assert.deepEqual([...records.all(across)].map(([name]) => name.toString('hex')).sort(), inside);
  db.close();
});

/** A fresh data_manager table of `count` random chunks, the i-th recorded as `record(i, vaults)` says. */
function dmTable(count: number, vaultCount: number, record: (i: number, vaults: Name[]) => DataRecord) {
  const db = openDatabase(join(tempDir(), 'dm.sqlite'));
  const records = new DataManagerRecords(db);
  const vaults = Array.from({ length: vaultCount }, () => randomBytes(32));
  const chunks = Array.from({ length: count }, () => randomBytes(32));
  chunks.forEach((chunk, i) => records.put(chunk, record(i, vaults)));
  return { db, records, vaults, chunks };
}

test('data_manager records grouped: the named records read in one query are the ones a lone read gives, and writes within the group are seen at once', () => {
  const { db, records, vaults, chunks } = dmTable(40, 5, (i, v) => ({ version: i + 1, subscribers: 1 + (i % 3), size: 10 * i, holders: [v[i % 5]!, v[(i + 1) % 5]!] }));
  const alone = new Map(chunks.map((chunk) => [chunk.toString('hex'), records.get(chunk)]));
  // Named too: a chunk never recorded, and one sharing a recorded chunk's 8-byte key (its row is not that chunk's).
  const absent = randomBytes(32);
  const twin = Buffer.concat([chunks[3]!.subarray(0, 8), randomBytes(24)]);
  const named = [absent, twin, ...chunks].reverse();
  const rows = () => [...chunks, absent, twin].map((c) => ({ get: records.get(c), version: records.version(c) }));
  const read = db.transaction(() => records.grouped(rows, named))();
  const expected = [...chunks.map((c) => ({ get: alone.get(c.toString('hex')), version: alone.get(c.toString('hex'))!.version })), { get: undefined, version: undefined }, { get: undefined, version: undefined }];
  assert.deepEqual(read, expected);
  // The same with their versions alone read ahead; and with the twin named but not the chunk whose row it is.
  assert.deepEqual(db.transaction(() => records.grouped(rows, named, 'versions'))(), expected);
  for (const mode of ['records', 'versions'] as const) {
    const versions = () => [...chunks, absent, twin].map((c) => records.version(c));
    assert.deepEqual(db.transaction(() => records.grouped(versions, named, mode))(), expected.map((e) => e.version));
    assert.deepEqual(db.transaction(() => records.grouped(versions, [twin, absent], mode))(), expected.map((e) => e.version));
    assert.deepEqual(db.transaction(() => records.grouped(rows, [twin, absent], mode))(), expected);
  }
  db.transaction(() =>
    records.grouped(() => {
      records.put(chunks[0]!, { version: 9, subscribers: 2, size: 0, holders: [vaults[4]!] });
      assert.deepEqual(records.get(chunks[0]!), { version: 9, subscribers: 2, size: 0, holders: [vaults[4]!] });
      records.delete(chunks[1]!);
      assert.equal(records.get(chunks[1]!), undefined);
      records.put(absent, { version: 1, subscribers: 1, size: 5, holders: [vaults[0]!] });
      assert.equal(records.version(absent), 1);
    }, named),
  )();
  assert.deepEqual(records.get(chunks[0]!), { version: 9, subscribers: 2, size: 0, holders: [vaults[4]!] });
  assert.equal(records.get(chunks[1]!), undefined);
  assert.deepEqual(records.get(absent), { version: 1, subscribers: 1, size: 5, holders: [vaults[0]!] });
  assert.ok(records.chunksHeldBy(vaults[4]!).some((c) => c.equals(chunks[0]!)));
  db.close();
});

test("data_manager records of many posting entries are read in a few queries, each chunk with its own record", () => {
  // Enough chunks for several queries' worth of entries; half of them held by vault 0.
  const { db, records, vaults, chunks } = dmTable(1200, 3, (i, v) => ({ version: 1 + (i % 7), subscribers: 1, size: i, holders: i % 2 ? [v[1]!, v[2]!] : [v[0]!, v[1 + (i % 4 === 0 ? 1 : 0)]!] }));
  const entries = [...records.entriesHeldIn(vaults[0]!, () => [EVERY_NAME])];
  assert.ok(entries.length > 512);
  const read = records.recordsAt(entries).map(([name, record]) => [name.toString('hex'), record] as const);
  const expected = chunks.filter((_, i) => i % 2 === 0).map((name) => [name.toString('hex'), records.get(name)] as const);
  const byName = (a: readonly [string, unknown], b: readonly [string, unknown]) => a[0].localeCompare(b[0]);
  assert.deepEqual(read.sort(byName), expected.sort(byName));
  db.close();
});

test('data_manager records read in bulk: every record of many pages comes back once, the first and last keys of each half included', () => {
  const db = openDatabase(join(tempDir(), 'dm.sqlite'));
  const records = new DataManagerRecords(db);
  const holders = [randomBytes(32), randomBytes(32)];
  // The names with the largest and smallest positive and negative keys, and enough others for several pages in each half.
  const edges = [Buffer.alloc(8, 0), Buffer.from('7fffffffffffffff', 'hex'), Buffer.from('8000000000000000', 'hex'), Buffer.alloc(8, 0xff)];
  const chunks = [...edges.map((key) => Buffer.concat([key, randomBytes(24)])), ...Array.from({ length: 9000 }, () => randomBytes(32))];
  db.transaction(() => chunks.forEach((chunk, i) => records.put(chunk, { version: 1 + (i % 3), subscribers: 1, size: i, holders })))();
  const read = [...records.all()];
  assert.equal(read.length, chunks.length);
  const byName = new Map(read.map(([name, record]) => [name.toString('hex'), record]));
  chunks.forEach((chunk, i) => assert.deepEqual(byName.get(chunk.toString('hex')), { version: 1 + (i % 3), subscribers: 1, size: i, holders }));
  const upper = { from: Buffer.alloc(32, 0x40), to: Buffer.alloc(32, 0xff) };
  const inside = chunks.filter((chunk) => inRange(chunk, upper)).map((chunk) => chunk.toString('hex')).sort();
  assert.deepEqual([...records.all(upper)].map(([name]) => name.toString('hex')).sort(), inside);
  // A filter is asked about every name in the range, once each, and only the names it wants come back, with their records.
  const asked: string[] = [];
  const even = (name: Buffer) => (asked.push(name.toString('hex')), name[31]! % 2 === 0);
  const wanted = [...records.all(upper, even)];
  assert.deepEqual([...asked].sort(), inside);
  assert.deepEqual(wanted.map(([name]) => name.toString('hex')).sort(), inside.filter((hex) => parseInt(hex.slice(-2), 16) % 2 === 0));
  for (const [name, record] of wanted) assert.deepEqual(record, byName.get(name.toString('hex')));
  db.close();
});

test('data_manager holder index: chunks sharing a posting entry are told apart; a table from 7-byte entries is reindexed', () => {
  const path = join(tempDir(), 'dm.sqlite');
  let db = openDatabase(path);
  // A table as the version before 6-byte entries left it: one chunk held by vault 1, its 7-byte entry.
  db.exec(`CREATE TABLE dm_vault (id INTEGER PRIMARY KEY, name BLOB NOT NULL UNIQUE) STRICT;
    CREATE TABLE dm_chunk (key INTEGER PRIMARY KEY, tail BLOB NOT NULL, size INTEGER NOT NULL, subscribers INTEGER NOT NULL, holders BLOB NOT NULL, version INTEGER NOT NULL DEFAULT 1) STRICT;
    CREATE TABLE dm_holding (vault INTEGER NOT NULL, bucket INTEGER NOT NULL, keys BLOB NOT NULL, PRIMARY KEY (vault, bucket)) WITHOUT ROWID, STRICT;
    INSERT INTO schema_version (owner, version) VALUES ('data_manager', 2);`);
  const [holder, other] = [randomBytes(32), randomBytes(32)];
  const old = randomBytes(32);
  db.prepare('INSERT INTO dm_vault (id, name) VALUES (1, ?), (2, ?)').run(holder, other);
  db.prepare('INSERT INTO dm_chunk (key, tail, size, subscribers, holders) VALUES (?, ?, 1, 1, ?)').run(old.readBigInt64BE(0), old.subarray(8), Buffer.of(1));
  db.prepare('INSERT INTO dm_holding (vault, bucket, keys) VALUES (1, ?, ?)').run(old.readUInt16BE(0) >> 6, old.subarray(1, 8));
  let records = new DataManagerRecords(db);
  assert.deepEqual(records.chunksHeldBy(holder), [old]);

  // Chunks whose keys differ only in their last 6 bits share an entry.
  const twin = (name: Buffer, low: number) => Buffer.concat([name.subarray(0, 7), Buffer.of((name[7]! & 0xc0) | low), randomBytes(24)]);
  const [a, b, c] = [0, 1, 2, 3].map((low) => twin(old, low)).filter((n) => !n.subarray(0, 8).equals(old.subarray(0, 8)));
  const put = (name: Buffer, holders: Buffer[]) => records.put(name, { version: 1, subscribers: 1, size: 1, holders });
  put(a!, [holder]);
  put(b!, [other]);
  const held = (vault: Buffer) => records.chunksHeldBy(vault).map((n) => n.toString('hex')).sort();
  assert.deepEqual(held(holder), [old, a!].map((n) => n.toString('hex')).sort(), 'a chunk sharing the entry but not the holder is left out');
  // The holder leaves one chunk: the entry stays for the other.
  put(old, [other]);
  assert.deepEqual(held(holder), [a!.toString('hex')]);
  records.delete(a!);
  assert.deepEqual(held(holder), []);
  put(c!, [holder]);
  db.close();
  db = openDatabase(path);
  records = new DataManagerRecords(db);
  assert.deepEqual(held(holder), [c!.toString('hex')]);
  assert.deepEqual(held(other), [old, b!].map((n) => n.toString('hex')).sort());
  db.close();
});

test('codec: values round-trip canonically; malformed, oversize and unknown-version frames are refused', () => {
  const value = { type: 'dm.info', chunk: randomBytes(32), n: 300, neg: -5, list: [true, false, null, 'é'], nested: { b: 1, a: Buffer.alloc(0) } };
  const frame = encodeFrame('message', value);
  const back = decodeFrame(frame);
  assert.equal(back.kind, 'message');
  assert.deepEqual(back.value, value);
  // Key order does not change the encoding: equal values, equal bytes.
  assert.ok(canonical({ a: 1, b: 2 }).equals(canonical({ b: 2, a: 1 })));
  assert.equal(digestOf({ a: 1, b: 2 }), digestOf({ b: 2, a: 1 }));
  assert.notEqual(digestOf({ a: 1 }), digestOf({ a: 2 }));
  // However many keys (few are sorted by insertion, more by sort()) and in whatever order, they are written as sort() orders them.
  const names = ['version', 'value', 'ops', 'ab', 'a', 'B', 'é', 'Z', 'key', 'slot', 'ballot', 'promised'];
  for (let n = 1; n <= names.length; n++) {
    for (const order of [names.slice(0, n), names.slice(0, n).reverse()]) {
      const map = Object.fromEntries(order.map((key) => [key, key.length]));
      assert.deepEqual(Object.keys(decodeCanonical(canonical(map)) as object), [...order].sort());
    }
  }

  const refused = (bytes: Buffer, code: string, pattern: RegExp) =>
    assert.throws(() => decodeFrame(bytes), (e) => isSafeVaultError(e) && e.code === code && pattern.test(e.message));
  refused(Buffer.concat([Buffer.of(2), frame.subarray(1)]), 'bad-request', /unknown version/);
  refused(frame.subarray(0, frame.length - 3), 'bad-request', /truncated/);
  refused(Buffer.concat([frame, Buffer.of(0)]), 'bad-request', /trailing/);
  refused(Buffer.of(WIRE_VERSION, 9, 0), 'bad-request', /frame kind/);
  refused(Buffer.of(WIRE_VERSION, 0, 42), 'bad-request', /unknown tag/);
  refused(Buffer.of(WIRE_VERSION, 0, 3, 0x80, 0), 'bad-request', /non-minimal/);
  // Map keys out of order (b before a) cannot come from the encoder: refused.
  refused(Buffer.of(WIRE_VERSION, 0, 8, 2, 6, 1, 98, 0, 6, 1, 97, 0), 'bad-request', /out of order/);
  refused(Buffer.of(WIRE_VERSION, 0, 7, 0xff, 0xff, 0x03), 'bad-request', /longer than the frame/);
  refused(Buffer.alloc(MAX_FRAME_BYTES + 1), 'too-large', /exceeds/);
  assert.throws(() => encodeFrame('message', { bytes: Buffer.alloc(MAX_FRAME_BYTES) }), (e) => isSafeVaultError(e) && e.code === 'too-large');
  assert.throws(() => canonical({ x: 1.5 }), /safe integers/);
  // A field named __proto__ is a field like any other: it never becomes the decoded object's prototype.
  const proto = decodeFrame(Buffer.of(WIRE_VERSION, 0, 8, 1, 6, 9, ...Buffer.from('__proto__'), 8, 1, 6, 1, 120, 3, 1)).value as Record<string, WireValue>;
  assert.equal(Object.getPrototypeOf(proto), Object.prototype);
  assert.deepEqual(Object.keys(proto), ['__proto__']);
  assert.equal((proto as { x?: unknown }).x, undefined);
  // Texts read lately are found again by their length and first, middle and last bytes, then compared whole: these two share all four.
  for (let round = 0; round < 2; round++) {
    assert.deepEqual(decodeFrame(encodeFrame('message', { abcd: 1, type: 'azcd' })).value, { abcd: 1, type: 'azcd' });
    assert.deepEqual(decodeFrame(encodeFrame('message', { azcd: 2, type: 'abcd' })).value, { azcd: 2, type: 'abcd' });
  }
  // A small byte field is a copy of its own, not a view of the frame.
  const received = Buffer.from(frame);
  const small = decodeFrame(received).value as { chunk: Buffer };
  received.fill(0);
  assert.ok(small.chunk.equals(value.chunk));
});

test('codec: nesting past the depth limit is refused both ways, and a deeply nested frame is refused, not a stack overflow', () => {
  const nest = (depth: number): WireValue => (depth === 0 ? null : [nest(depth - 1)]);
  /** A frame of `depth` one-item lists around a null: the null sits at depth `depth`. */
  const nestedFrame = (depth: number) => Buffer.concat([Buffer.of(WIRE_VERSION, 0), Buffer.alloc(2 * depth, Buffer.of(7, 1)), Buffer.of(0)]);
  // The deepest value the codec allows (depth 8) round-trips, and the encoder writes the bytes a decoder expects.
  assert.ok(encodeFrame('message', nest(8)).equals(nestedFrame(8)));
  assert.deepEqual(decodeFrame(nestedFrame(8)).value, nest(8));
  // One level more: the encoder will not write it, the decoder will not read it.
  assert.throws(() => encodeFrame('message', nest(9)), /nests too deeply/);
  const tooDeep = (e: unknown) => isSafeVaultError(e) && e.code === 'bad-request' && /nested too deeply/.test(e.message);
  assert.throws(() => decodeFrame(nestedFrame(9)), tooDeep);
  // Map values count as a level too: a key's value at depth 9 is refused.
  const mapNest = (depth: number): WireValue => (depth === 0 ? null : { k: mapNest(depth - 1) });
  assert.deepEqual(decodeFrame(encodeFrame('message', mapNest(8))).value, mapNest(8));
  assert.throws(() => encodeFrame('message', mapNest(9)), /nests too deeply/);
  const mapFrame = Buffer.concat([Buffer.of(WIRE_VERSION, 0), Buffer.alloc(5 * 9, Buffer.of(8, 1, 6, 1, 107)), Buffer.of(0)]);
  assert.throws(() => decodeFrame(mapFrame), tooDeep);
  // A peer's 100,000 nested lists cost a refusal, not the receiver's stack.
  assert.throws(() => decodeFrame(nestedFrame(100_000)), tooDeep);
});

test('codec: text that is not valid UTF-8 is refused, in values and in map keys', () => {
  const text = (...bytes: number[]) => Buffer.of(WIRE_VERSION, 0, 6, bytes.length, ...bytes);
  assert.equal(decodeFrame(text(0xc3, 0xa9)).value, 'é');
  assert.equal(decodeFrame(text(0xf0, 0x9f, 0x94, 0x91)).value, '🔑');
  const notUtf8 = (e: unknown) => isSafeVaultError(e) && e.code === 'bad-request' && /not valid UTF-8/.test(e.message);
  for (const bad of [
    [0xff], // never a UTF-8 byte
    [0xc3], // a lead byte with its continuation missing
    [0x61, 0xa9], // a continuation byte with no lead
    [0xc0, 0xaf], // an overlong '/'
    [0xed, 0xa0, 0x80], // a UTF-16 surrogate, which UTF-8 may not carry
    [0xf4, 0x90, 0x80, 0x80], // past U+10FFFF
  ]) {
    assert.throws(() => decodeFrame(text(...bad)), notUtf8, Buffer.from(bad).toString('hex'));
  }
  // A map key is text too: { "\xff": null } is refused, not read as U+FFFD.
  assert.throws(() => decodeFrame(Buffer.of(WIRE_VERSION, 0, 8, 1, 6, 1, 0xff, 0)), notUtf8);
});

test('codec: integers have one encoding each: negative zero and integers past 2^53 are refused', () => {
  const refused = (bytes: Buffer, pattern: RegExp) =>
    assert.throws(() => decodeFrame(bytes), (e) => isSafeVaultError(e) && e.code === 'bad-request' && pattern.test(e.message));
  // -0 is written as 0 (so it cannot change a digest), and a "negative zero" on the wire is refused.
  assert.ok(canonical(-0).equals(canonical(0)));
  assert.ok(Object.is(decodeFrame(encodeFrame('message', -0)).value, 0));
  refused(Buffer.of(WIRE_VERSION, 0, 4, 0), /negative zero/);
  // The largest integers either way round-trip, byte for byte.
  const max = Buffer.of(WIRE_VERSION, 0, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f);
  assert.ok(encodeFrame('message', Number.MAX_SAFE_INTEGER).equals(max));
  assert.equal(decodeFrame(max).value, Number.MAX_SAFE_INTEGER);
  assert.equal(decodeFrame(encodeFrame('message', Number.MIN_SAFE_INTEGER)).value, Number.MIN_SAFE_INTEGER);
  // 2^53 and 2^54 + 1 fit in 8 varint bytes but not in a double exactly: refused, not rounded to a
  // number whose own encoding differs (and that the encoder, digestOf included, would refuse).
  refused(Buffer.of(WIRE_VERSION, 0, 3, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10), /integer too large/);
  refused(Buffer.of(WIRE_VERSION, 0, 3, 0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20), /integer too large/);
  refused(Buffer.of(WIRE_VERSION, 0, 4, 0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20), /integer too large/);
  refused(Buffer.of(WIRE_VERSION, 0, 3, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01), /integer too large/);
  // Padding with a zero high group is refused at any length (the short form is the only form).
  refused(Buffer.of(WIRE_VERSION, 0, 3, 0x85, 0x80, 0x00), /non-minimal/);
});

test('frames: a reply or error frame where a message was expected is answered with an error frame and reported as malformed', async () => {
  const chunk = randomBytes(32);
  const from = randomBytes(32);
  const received: Message[] = [];
  const receiver = { receive: async (_from: Name, message: Message) => (received.push(message), { version: 0, record: null }) };
  for (const kind of ['reply', 'error'] as const) {
    const malformed: unknown[] = [];
    const answer = decodeFrame(await serveFrame(receiver, from, encodeFrame(kind, { type: 'dm.info', chunk }), (e) => malformed.push(e)));
    assert.equal(answer.kind, 'error');
    assert.equal((answer.value as { code: string }).code, 'bad-request');
    assert.match((answer.value as { message: string }).message, new RegExp(`a ${kind} frame where a message was expected`));
    assert.equal(malformed.length, 1);
    assert.ok(isSafeVaultError(malformed[0]) && malformed[0].code === 'bad-request');
  }
  assert.deepEqual(received, []);
  // The same message as a message frame is handled and answered with a reply frame; nothing is malformed.
  const malformed: unknown[] = [];
  const answer = decodeFrame(await serveFrame(receiver, from, encodeFrame('message', { type: 'dm.info', chunk }), (e) => malformed.push(e)));
  assert.deepEqual(answer, { kind: 'reply', value: { version: 0, record: null } });
  assert.deepEqual(received, [{ type: 'dm.info', chunk }]);
  // A refusal by the receiver goes back as an error frame with its own code, but is no malformed frame.
  const refusing = { receive: async () => Promise.reject(new SafeVaultError('not-found', 'no such chunk')) };
  const refusal = decodeFrame(await serveFrame(refusing, from, encodeFrame('message', { type: 'dm.info', chunk }), (e) => malformed.push(e)));
  assert.deepEqual(refusal, { kind: 'error', value: { code: 'not-found', message: 'no such chunk' } });
  assert.deepEqual(malformed, []);
});

test('frames: readReply turns an error frame into its refusal, and one with a malformed body into "unavailable", never a crash', () => {
  assert.throws(() => readReply('dm.info', encodeFrame('error', { code: 'no-space', message: 'full' }), 'peer'), (e) => isSafeVaultError(e) && e.code === 'no-space' && e.message === 'full');
  // A peer's message is cut to one line of at most 500 characters, as every error crossing a boundary is.
  const long = { code: 'no-space', message: `full\n${'x'.repeat(100_000)}` };
  assert.throws(() => readReply('dm.info', encodeFrame('error', long), 'peer'), (e) => isSafeVaultError(e) && e.message === 'full');
  const wide = { code: 'no-space', message: 'y'.repeat(100_000) };
  assert.throws(() => readReply('dm.info', encodeFrame('error', wide), 'peer'), (e) => isSafeVaultError(e) && e.message.length === 500);
  const bodies: WireValue[] = [
    null,
    'no-space',
    [],
    {},
    { code: 'no-space' }, // no message
    { message: 'full' }, // no code
    { code: 'meltdown', message: 'full' }, // a code the API does not have
    { code: 'no-space', message: 7 },
    { code: Buffer.from('no-space'), message: 'full' },
  ];
  for (const body of bodies) {
    assert.throws(
      () => readReply('dm.info', encodeFrame('error', body), 'peer'),
      (e) => isSafeVaultError(e) && e.code === 'unavailable' && e.message === 'vault peer sent a malformed error',
      JSON.stringify(body),
    );
  }
  // A message frame as an answer is refused; a reply frame is schema-checked like any reply.
  assert.throws(() => readReply('dm.info', encodeFrame('message', { type: 'dm.info', chunk: randomBytes(32) }), 'peer'), /answered with a message frame/);
  assert.deepEqual(readReply('dm.info', encodeFrame('reply', { version: 0, record: null }), 'peer'), { version: 0, record: null });
  assert.throws(() => readReply('dm.info', encodeFrame('reply', { version: -1, record: null }), 'peer'));
});

test('messages are schema-checked at receipt: unknown types and malformed fields are refused', () => {
  const chunk = randomBytes(32);
  assert.deepEqual(parseMessage({ type: 'dm.info', chunk }), { type: 'dm.info', chunk });
  assert.throws(() => parseMessage({ type: 'dm.nuke', chunk }), /unknown message type/);
  assert.throws(() => parseMessage({ type: 'dm.info', chunk: randomBytes(31) }), /bad dm.info: chunk/);
  assert.throws(() => parseMessage({ type: 'dm.info', chunk, extra: 1 }), /bad dm.info/);
  assert.throws(() => parseMessage({ type: 'node.store', chunk, bytes: Buffer.alloc(MAX_CHUNK_SIZE + 1), copy: false, base: 0 }), /bad node.store: bytes/);
  assert.throws(() => parseMessage(null), /unknown message type/);
  // Every message type names who may send it and who receives it.
  for (const [type, route] of Object.entries(MESSAGES)) assert.ok(route.sender && route.receiver, type);
});
