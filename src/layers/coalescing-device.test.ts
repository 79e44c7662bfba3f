// Unit tests of the coalescing layer's batched writes: many scattered small
// writes issued in one turn go to the device's writePieces (data exact, every
// caller settles with the batch's result); few go through write(); the batched
// device is found only through pass-through layers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CoalescingDevice, pieceDeviceOf } from './coalescing-device.js';
import { TimedDevice, IoObserver } from './timed-device.js';
import { MemoryDevice } from '../devices/memory-device.js';
import { BlockDevice } from '../devices/block-device.js';
import { PieceDevice } from '../devices/scatter-io.js';
import { BlockcacheError } from '../stdx/errors.js';
import { SCATTER_IO_PIECES_MIN } from '../constants.js';

/** A memory device with batched writes done piece by piece (the worker's contract, without a worker). */
class PiecesMemory extends MemoryDevice implements PieceDevice {
  batches: number[] = [];
  plainWrites = 0;
  fail = false;
  override async write(source: Buffer, offsetBytes: number): Promise<void> {
    this.plainWrites++;
    return super.write(source, offsetBytes);
  }
  async readPieces(): Promise<Uint32Array | undefined> {
    throw new Error('not used');
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

test('pieceDeviceOf looks through the coalescing and timing layers only', () => {
  const pieces = new PiecesMemory(1024 * 1024);
  assert.equal(pieceDeviceOf(pieces), pieces);
  assert.equal(pieceDeviceOf(new CoalescingDevice(new TimedDevice(pieces, noObserver))), pieces);
  assert.equal(pieceDeviceOf(new MemoryDevice(1024 * 1024)), undefined);
  // An unknown layer may hold data of its own: never looked through.
  const other: BlockDevice = Object.assign(Object.create(MemoryDevice.prototype) as MemoryDevice, { inner: pieces });
  assert.equal(pieceDeviceOf(new CoalescingDevice(other)), undefined);
});
