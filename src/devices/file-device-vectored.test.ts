// Vectored I/O (FileDevice.readv / writev) and the coalescing layer's use of it:
// merged adjacent operations reach the file as one preadv/pwritev of the callers'
// own buffers, with the same bytes as separate reads and writes.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FileDevice, remainingAfter } from './file-device.js';
import { CoalescingDevice } from '../layers/coalescing-device.js';
import { BlockDevice } from './block-device.js';
import { BlockcacheError } from '../stdx/errors.js';
import { FILE_WRITE_PIECE_BYTES } from '../constants.js';

const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'blockcache-vectored-'));
after(() => fs.rmSync(directory, { recursive: true, force: true }));

function pattern(length: number, seed: number): Buffer {
  const data = Buffer.alloc(length);
  for (let i = 0; i < length; i++) data[i] = (i * 31 + seed * 7) & 0xff;
  return data;
}

test('remainingAfter skips whole and partial buffers of a short transfer', () => {
  const buffers = [Buffer.alloc(3, 1), Buffer.alloc(5, 2), Buffer.alloc(2, 3)];
  assert.deepEqual(remainingAfter(buffers, 0).map((b) => b.length), [3, 5, 2]);
  assert.deepEqual(remainingAfter(buffers, 3).map((b) => b.length), [5, 2]);
  const rest = remainingAfter(buffers, 4);
  assert.deepEqual(rest.map((b) => b.length), [4, 2]);
  assert.equal(rest[0]!.buffer, buffers[1]!.buffer, 'a view, not a copy');
  assert.deepEqual(remainingAfter(buffers, 10), []);
});

test('FileDevice writev/readv move exactly the bytes of plain writes and reads; ranges are checked', async () => {
  const file = path.join(directory, 'v.img');
  const device = await FileDevice.open(file, { createSizeBytes: 1024 * 1024 });
  try {
    const sources = [pattern(4096, 1), pattern(100, 2), pattern(8192, 3), pattern(1, 4)];
    const total = sources.reduce((sum, b) => sum + b.length, 0);
    await device.writev(sources, 12_345);
    const plain = Buffer.alloc(total);
    await device.read(plain, 12_345);
    assert.ok(plain.equals(Buffer.concat(sources)));
    const targets = [Buffer.alloc(7), Buffer.alloc(4000), Buffer.alloc(total - 4007)];
    await device.readv(targets, 12_345);
    assert.ok(Buffer.concat(targets).equals(plain));
    await assert.rejects(device.readv([Buffer.alloc(4096), Buffer.alloc(4096)], 1024 * 1024 - 4096), BlockcacheError);
    await assert.rejects(device.writev([Buffer.alloc(4096), Buffer.alloc(4096)], 1024 * 1024 - 4096), BlockcacheError);
  } finally {
    await device.close();
  }
});

test('writes spanning several FILE_WRITE_PIECE_BYTES spans (cut into one system call per span) land exactly: write, writev, inline and pool', async () => {
  const file = path.join(directory, 'pieces.img');
  const size = 4 * 1024 * 1024;
  for (const inlineIo of [false, true]) {
    const device = await FileDevice.open(file, { createSizeBytes: size, inlineIo });
    try {
      const big = pattern(FILE_WRITE_PIECE_BYTES * 3 + 5000, inlineIo ? 5 : 6);
      await device.write(big, FILE_WRITE_PIECE_BYTES - 1234);
      const small = pattern(FILE_WRITE_PIECE_BYTES, 7); // inline-sized, crossing one boundary
      await device.write(small, 2 * 1024 * 1024 - 4096);
      const sources = [pattern(FILE_WRITE_PIECE_BYTES + 17, 8), pattern(3, 9), pattern(2 * FILE_WRITE_PIECE_BYTES, 10)];
      await device.writev(sources, 3 * 1024 * 1024 - 100);
      const check = async (expected: Buffer, at: number) => {
        const actual = Buffer.alloc(expected.length);
        await device.read(actual, at);
        assert.ok(actual.equals(expected), `bytes at ${at} (inline ${inlineIo})`);
      };
      await check(big, FILE_WRITE_PIECE_BYTES - 1234);
      await check(small, 2 * 1024 * 1024 - 4096);
      await check(Buffer.concat(sources), 3 * 1024 * 1024 - 100);
    } finally {
      await device.close();
    }
  }
});

/** Counts the vectored calls that reach a FileDevice. */
class Counting implements BlockDevice {
  readvCalls = 0;
  writevCalls = 0;
  plain = 0;
  constructor(private readonly inner: FileDevice) {}
  get name() { return this.inner.name; }
  get sizeBytes() { return this.inner.sizeBytes; }
  get capabilities() { return this.inner.capabilities; }
  read(target: Buffer, offsetBytes: number) { this.plain++; return this.inner.read(target, offsetBytes); }
  write(source: Buffer, offsetBytes: number) { this.plain++; return this.inner.write(source, offsetBytes); }
  readv(targets: readonly Buffer[], offsetBytes: number) { this.readvCalls++; return this.inner.readv(targets, offsetBytes); }
  writev(sources: readonly Buffer[], offsetBytes: number) { this.writevCalls++; return this.inner.writev(sources, offsetBytes); }
  flush() { return this.inner.flush(); }
  trim(offsetBytes: number, lengthBytes: number) { return this.inner.trim(offsetBytes, lengthBytes); }
  writeZeroes(offsetBytes: number, lengthBytes: number) { return this.inner.writeZeroes(offsetBytes, lengthBytes); }
  close() { return this.inner.close(); }
}

test('the coalescing layer merges adjacent reads and writes of one turn into single vectored calls', async () => {
  const file = path.join(directory, 'c.img');
  const counting = new Counting(await FileDevice.open(file, { createSizeBytes: 8 * 1024 * 1024 }));
  const device = new CoalescingDevice(counting);
  try {
    const blocks = Array.from({ length: 64 }, (_, i) => pattern(4096, i));
    // Issued out of order in one turn: one run of 64 adjacent blocks.
    await Promise.all(blocks.map((data, i) => ({ data, i })).reverse().map(({ data, i }) => device.write(data, 4096 + i * 4096)));
    assert.equal(counting.writevCalls, 1);
    assert.equal(counting.plain, 0);
    const targets = blocks.map(() => Buffer.alloc(4096));
    await Promise.all(targets.map((target, i) => device.read(target, 4096 + i * 4096)));
    assert.equal(counting.readvCalls, 1);
    targets.forEach((target, i) => assert.ok(target.equals(blocks[i]!), `block ${i}`));
    // A lone operation stays a plain one.
    await device.read(Buffer.alloc(4096), 0);
    assert.equal(counting.plain, 1);
  } finally {
    await device.close();
  }
});

test('FileDevice with inline I/O: small reads and writes run on the calling thread, large ones do not, bytes exact', async () => {
  const file = path.join(directory, 'inline.img');
  const device = await FileDevice.open(file, { createSizeBytes: 4 * 1024 * 1024, inlineIo: true });
  try {
    const reads = device.inlineReads!;
    const writes = device.inlineWrites!;
    assert.ok(reads && writes);
    assert.equal(device.inlineNow(true), true);
    assert.equal(device.inlineNow(false), true);
    const small = pattern(4096, 5);
    const large = pattern(256 * 1024, 6);
    await device.write(small, 8192);
    await device.write(large, 1024 * 1024);
    assert.equal(writes.inline, 1, 'only the small write ran inline');
    const back = Buffer.alloc(small.length + large.length);
    await device.read(back.subarray(0, small.length), 8192);
    await device.read(back.subarray(small.length), 1024 * 1024);
    assert.equal(reads.inline, 1, 'only the small read ran inline');
    assert.deepEqual(back, Buffer.concat([small, large]));
    const tail = Buffer.alloc(4096, 0xff);
    await device.read(tail, 4 * 1024 * 1024 - 4096);
    assert.ok(tail.equals(Buffer.alloc(4096)), 'the sparse end reads as zeroes');
    await assert.rejects(device.write(small, 4 * 1024 * 1024 - 100), BlockcacheError, 'ranges are still checked');
    await assert.rejects(device.read(Buffer.alloc(4096), 4 * 1024 * 1024 - 100), BlockcacheError);
    assert.equal(writes.inline, 1);
    // readNow: the same inline read, synchronous; false for what is not read inline; ranges checked.
    const now = Buffer.alloc(small.length);
    assert.equal(device.readNow(now, 8192), true);
    assert.deepEqual(now, small);
    assert.equal(reads.inline, 3);
    assert.equal(device.readNow(Buffer.alloc(large.length), 1024 * 1024), false, 'large reads stay in the pool');
    assert.throws(() => device.readNow(Buffer.alloc(4096), 4 * 1024 * 1024 - 100), BlockcacheError);
    const through = new CoalescingDevice(device, true);
    const viaLayer = Buffer.alloc(small.length);
    assert.equal(through.readNow!(viaLayer, 8192), true, 'the coalescing layer passes readNow through');
    assert.deepEqual(viaLayer, small);
    // writeNow: the same inline write, synchronous; false for FUA and large writes; ranges checked.
    const inlineWrites = writes.inline;
    const newer = pattern(small.length, 9);
    assert.equal(device.writeNow(newer, 8192), true);
    assert.equal(writes.inline, inlineWrites + 1);
    assert.equal(device.readNow(now, 8192), true);
    assert.deepEqual(now, newer);
    assert.equal(device.writeNow(small, 8192, { fua: true }), false, 'FUA goes through write()');
    assert.equal(device.writeNow(large, 1024 * 1024), false, 'large writes stay in the pool');
    assert.throws(() => device.writeNow(small, 4 * 1024 * 1024 - 100), BlockcacheError);
    assert.equal(through.writeNow!(small, 8192), true, 'the coalescing layer passes writeNow through');
    assert.equal(device.readNow(now, 8192), true);
    assert.deepEqual(now, small);
  } finally {
    await device.close();
  }
  const plain = await FileDevice.open(file);
  try {
    assert.equal(plain.inlineReads, null, 'off unless asked for');
    assert.equal(plain.inlineWrites, null);
    assert.equal(plain.inlineNow(true), false);
  } finally {
    await plain.close();
  }
});

test('FileDevice without inline I/O never reads or writes now', async () => {
  const device = await FileDevice.open(path.join(directory, 'no-inline.img'), { createSizeBytes: 1024 * 1024 });
  try {
    assert.equal(device.readNow(Buffer.alloc(4096), 0), false);
    assert.equal(device.writeNow(Buffer.alloc(4096), 0), false);
  } finally {
    await device.close();
  }
});

test('the coalescing layer batches a turn of scattered reads for a worker only while the device does not read inline', async () => {
  const file = path.join(directory, 'inline-batch.img');
  const inner = await FileDevice.open(file, { createSizeBytes: 4 * 1024 * 1024, inlineIo: true });
  const device = new CoalescingDevice(inner, true);
  try {
    const blocks = Array.from({ length: 8 }, (_, i) => pattern(4096, 20 + i));
    await Promise.all(blocks.map((data, i) => inner.write(data, i * 3 * 4096)));
    const back = blocks.map(() => Buffer.alloc(4096));
    await Promise.all(back.map((target, i) => device.read(target, i * 3 * 4096)));
    assert.deepEqual(back, blocks);
    assert.equal(inner.inlineReads!.inline, 8, 'each read inline, none batched');
  } finally {
    await device.close();
  }
});
