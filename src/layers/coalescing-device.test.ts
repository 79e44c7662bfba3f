// Unit tests of the coalescing layer's batched I/O: many scattered small
// writes issued in one turn go to the device's writePieces (data exact, every
// caller settles with the batch's result); few go through write(); scattered
// reads are batched only when the layer batches reads (data exact, jobs of at
// most SCATTER_READ_JOB_PIECES_MAX, a failed job retried read by read); the
// batched device is found only through pass-through layers, and a timing layer
// over it times its jobs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CoalescingDevice, pieceDeviceOf } from './coalescing-device.js';
import { TimedDevice, IoObserver } from './timed-device.js';
import { MemoryDevice } from '../devices/memory-device.js';
import { BlockDevice } from '../devices/block-device.js';
import { PieceDevice } from '../devices/scatter-io.js';
import { BlockcacheError } from '../stdx/errors.js';
import { SCATTER_IO_PIECES_MIN, SCATTER_READ_JOB_PIECES_MAX, SCATTER_READ_PIECES_MIN } from '../constants.js';

/** A memory device with batched writes done piece by piece (the worker's contract, without a worker). */
class PiecesMemory extends MemoryDevice implements PieceDevice {
  batches: number[] = [];
  readBatches: number[] = [];
  plainWrites = 0;
  plainReads = 0;
  fail = false;
  /** Reads of this offset fail, alone or in a batch (a bad block). */
  badOffset = -1;
  override async write(source: Buffer, offsetBytes: number): Promise<void> {
    this.plainWrites++;
    return super.write(source, offsetBytes);
  }
  override async read(target: Buffer, offsetBytes: number): Promise<void> {
    this.plainReads++;
    if (offsetBytes === this.badOffset) throw new BlockcacheError('EIO', 'injected read error');
    return super.read(target, offsetBytes);
  }
  async readPieces(positions: Float64Array, lengths: Uint32Array, memory: SharedArrayBuffer): Promise<Uint32Array | undefined> {
    this.readBatches.push(positions.length);
    const data = Buffer.from(memory);
    let at = 0;
    for (let i = 0; i < positions.length; i++) {
      if (positions[i] === this.badOffset) throw new BlockcacheError('EIO', 'injected batch read error');
      await super.read(data.subarray(at, at + lengths[i]!), positions[i]!);
      at += lengths[i]!;
    }
    return undefined;
  }
  async writePieces(positions: Float64Array, lengths: Uint32Array, memory: SharedArrayBuffer): Promise<void> {
    this.batches.push(positions.length);
    if (this.fail) throw new BlockcacheError('EIO', 'injected batch error');
    const data = Buffer.from(memory);
    let at = 0;
    for (let i = 0; i < positions.length; i++) {
      await super.write(Buffer.from(data.subarray(at, at + lengths[i]!)), positions[i]!);
      at += lengths[i]!;
    }
  }
}

const noObserver: IoObserver = { record: () => {} };

function block(value: number, length = 4096): Buffer {
  return Buffer.alloc(length, value);
}

test('many scattered small writes in one turn become batched jobs, data exact', async () => {
  const inner = new PiecesMemory(64 * 1024 * 1024);
  const device = new CoalescingDevice(inner);
  const count = 3 * SCATTER_IO_PIECES_MIN;
  // Every other block, one more next to the last (an adjacent pair: one piece) and one large write (not batched).
  const writes = Array.from({ length: count }, (_, i) => device.write(block(i + 1), i * 2 * 4096));
  writes.push(device.write(block(200), (2 * count - 1) * 4096));
  writes.push(device.write(block(201, 1024 * 1024), 32 * 1024 * 1024));
  await Promise.all(writes);
  assert.equal(inner.batches.length, 1);
  assert.equal(inner.batches[0], count + 1); // every small write, in offset order (the worker merges adjacent ones)
  assert.equal(inner.plainWrites, 1); // the large write
  const target = Buffer.alloc(4096);
  for (let i = 0; i < count; i++) {
    await inner.read(target, i * 2 * 4096);
    assert.ok(target.equals(block(i + 1)), `block ${i * 2}`);
    await inner.read(target, (i * 2 + 1) * 4096);
    assert.ok(target.equals(i === count - 1 ? block(200) : block(0)), `block ${i * 2 + 1}`);
  }
  await inner.read(target, 32 * 1024 * 1024);
  assert.ok(target.equals(block(201)));
});

test('few scattered writes go through write(); a failed batch fails every caller in it', async () => {
  const inner = new PiecesMemory(16 * 1024 * 1024);
  const device = new CoalescingDevice(inner);
  await Promise.all(Array.from({ length: SCATTER_IO_PIECES_MIN - 1 }, (_, i) => device.write(block(1), i * 8192)));
  assert.equal(inner.batches.length, 0);
  assert.equal(inner.plainWrites, SCATTER_IO_PIECES_MIN - 1);
  inner.fail = true;
  const results = await Promise.allSettled(Array.from({ length: SCATTER_IO_PIECES_MIN }, (_, i) => device.write(block(2), i * 8192)));
  assert.equal(inner.batches.length, 1);
  for (const result of results) {
    assert.equal(result.status, 'rejected');
    assert.ok((result as PromiseRejectedResult).reason instanceof BlockcacheError);
  }
});

async function filled(blocks: number): Promise<PiecesMemory> {
  const inner = new PiecesMemory(blocks * 4096);
  for (let i = 0; i < blocks; i++) await inner.write(block(i % 250 + 1), i * 4096);
  inner.plainWrites = 0;
  return inner;
}

test('scattered reads in one turn become batched jobs when the layer batches reads, data exact', async () => {
  const inner = await filled(256);
  const device = new CoalescingDevice(inner, true);
  const count = 2 * SCATTER_READ_JOB_PIECES_MAX + 3;
  // Every third block (never adjacent), plus one large read that is not batched.
  const targets = Array.from({ length: count }, () => Buffer.alloc(4096));
  const large = Buffer.alloc(128 * 1024);
  await Promise.all([...targets.map((target, i) => device.read(target, i * 3 * 4096)), device.read(large, 200 * 4096)]);
  assert.deepEqual(inner.readBatches, [SCATTER_READ_JOB_PIECES_MAX, SCATTER_READ_JOB_PIECES_MAX, 3]);
  assert.equal(inner.plainReads, 1); // the large read
  targets.forEach((target, i) => assert.ok(target.equals(block((i * 3) % 250 + 1)), `block ${i * 3}`));
  for (let i = 0; i < 32; i++) assert.ok(large.subarray(i * 4096, (i + 1) * 4096).equals(block((200 + i) % 250 + 1)));
});

test('reads are not batched below the minimum, nor by a layer that does not batch reads', async () => {
  const inner = await filled(64);
  const few = new CoalescingDevice(inner, true);
  await Promise.all(Array.from({ length: SCATTER_READ_PIECES_MIN - 1 }, (_, i) => few.read(Buffer.alloc(4096), i * 2 * 4096)));
  const plain = new CoalescingDevice(inner);
  await Promise.all(Array.from({ length: 2 * SCATTER_READ_PIECES_MIN }, (_, i) => plain.read(Buffer.alloc(4096), i * 2 * 4096)));
  assert.deepEqual(inner.readBatches, []);
  assert.equal(inner.plainReads, 3 * SCATTER_READ_PIECES_MIN - 1);
});

test('a failed read job retries each read alone: only the bad block fails, its neighbours get their data', async () => {
  const inner = await filled(64);
  inner.badOffset = 6 * 4096;
  const device = new CoalescingDevice(inner, true);
  const targets = Array.from({ length: 8 }, () => Buffer.alloc(4096));
  const results = await Promise.allSettled(targets.map((target, i) => device.read(target, i * 2 * 4096)));
  assert.deepEqual(inner.readBatches, [8]);
  assert.equal(inner.plainReads, 8);
  results.forEach((result, i) => {
    if (i === 3) {
      assert.equal(result.status, 'rejected');
      assert.ok((result as PromiseRejectedResult).reason instanceof BlockcacheError);
    } else {
      assert.equal(result.status, 'fulfilled', `read ${i}`);
      assert.ok(targets[i]!.equals(block(i * 2 + 1)), `block ${i * 2}`);
    }
  });
});

test('a timing layer over a batched device passes its jobs through and records every piece', async () => {
  const inner = await filled(64);
  const seen: number[] = [];
  const timed = new TimedDevice(inner, { record: (operation) => { seen.push(operation); } });
  const device = new CoalescingDevice(timed, true);
  const targets = Array.from({ length: 5 }, () => Buffer.alloc(4096));
  await Promise.all(targets.map((target, i) => device.read(target, i * 2 * 4096)));
  assert.deepEqual(inner.readBatches, [5]);
  assert.deepEqual(seen, [0, 0, 0, 0, 0]); // five reads (DeviceOp.read), one per piece
  targets.forEach((target, i) => assert.ok(target.equals(block(i * 2 + 1))));
  // The cleaner starts the workers ahead through this layer: warm() must reach the device.
  let warmed = 0;
  const warming = Object.assign(inner, { warm: () => { warmed++; } });
  new TimedDevice(warming, noObserver).warm?.();
  assert.equal(warmed, 1);
  assert.equal(new TimedDevice(new MemoryDevice(4096), noObserver).warm, undefined);
});

test('a device that reads inline gets a turn of scattered reads one by one, through the timing layer too', async () => {
  const inner = await filled(64);
  let inlineNow = true;
  const inlining = Object.assign(inner, { inlineNow: () => inlineNow });
  const device = new CoalescingDevice(new TimedDevice(inlining, noObserver), true);
  const read = () => Promise.all(Array.from({ length: 5 }, (_, i) => device.read(Buffer.alloc(4096), i * 2 * 4096)));
  await read();
  assert.deepEqual(inner.readBatches, [], 'no job while reads run inline');
  assert.equal(inner.plainReads, 5);
  inlineNow = false; // backing off: batched again
  await read();
  assert.deepEqual(inner.readBatches, [5]);
});

test('pieceDeviceOf looks through the coalescing and timing layers only', () => {
  const pieces = new PiecesMemory(1024 * 1024);
  assert.equal(pieceDeviceOf(pieces), pieces);
  const timed = new TimedDevice(pieces, noObserver);
  assert.equal(pieceDeviceOf(new CoalescingDevice(timed)), timed); // it times the jobs
  assert.equal(pieceDeviceOf(new CoalescingDevice(new TimedDevice(new MemoryDevice(1024 * 1024), noObserver))), undefined);
  assert.equal(pieceDeviceOf(new MemoryDevice(1024 * 1024)), undefined);
  // An unknown layer may hold data of its own: never looked through.
  const other: BlockDevice = Object.assign(Object.create(MemoryDevice.prototype) as MemoryDevice, { inner: pieces });
  assert.equal(pieceDeviceOf(new CoalescingDevice(other)), undefined);
});
