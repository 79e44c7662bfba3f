// Shared checks for NbdDevice against any writable NBD server (used by the
// test-client-* files). Each check writes its own region, so they can run in
// sequence on one export of at least 64 MiB.
import * as assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { MiB } from '../../src/constants.js';
import { NbdDevice } from '../../src/nbd/nbd-device.js';
import { isBlockcacheError } from '../../src/stdx/errors.js';

export async function checkRoundTrips(device: NbdDevice): Promise<void> {
  // Random data at odd offsets and lengths.
  for (const [offset, length] of [[12345, 100_001], [1, 1], [4095, 2], [3 * MiB + 511, 513]] as const) {
    const data = randomBytes(length);
    await device.write(data, offset);
    const back = Buffer.alloc(length);
    await device.read(back, offset);
    assert.ok(back.equals(data), `round trip at ${offset}+${length}`);
  }
  // Larger than any maximum payload in use (1 MiB or 32 MiB): split into requests.
  const large = randomBytes(34 * MiB + 3);
  await device.write(large, 8 * MiB + 5);
  const largeBack = Buffer.alloc(large.length);
  await device.read(largeBack, 8 * MiB + 5);
  assert.ok(largeBack.equals(large), 'large unaligned round trip');
}

/**
 * Concurrent reads of sizes from 1 byte to 3 MiB over known data: their replies interleave on the
 * wire, so some data streams straight into its target (NBD_DIRECT_READ_BYTES_MIN and more) while
 * smaller replies and headers pass through the receive buffer. Every byte must land in its own read.
 */
export async function checkConcurrentReads(device: NbdDevice): Promise<void> {
  const base = 20 * MiB;
  const data = randomBytes(8 * MiB);
  await device.write(data, base);
  const sizes = [1, 511, 4096, 32 * 1024 - 1, 32 * 1024, 65_537, 256 * 1024, 1 * MiB, 1 * MiB + 3, 3 * MiB];
  const reads = Array.from({ length: 60 }, (_, i) => {
    const length = sizes[i % sizes.length]!;
    const at = (i * 104_729) % (data.length - length);
    return { at, target: Buffer.alloc(length) };
  });
  await Promise.all(reads.map((read) => device.read(read.target, base + read.at)));
  for (const read of reads) {
    assert.ok(read.target.equals(data.subarray(read.at, read.at + read.target.length)), `read of ${read.target.length} bytes at ${read.at}`);
  }
}

export async function checkZeroTrimFlush(device: NbdDevice): Promise<void> {
  const base = 48 * MiB;
  const data = randomBytes(2 * MiB);
  await device.write(data, base, { fua: true });
  await device.writeZeroes(base + 1000, 1 * MiB + 77);
  await device.writeZeroes(base + 1 * MiB + 2000, 4096, { noHole: true, fua: true });
  const back = Buffer.alloc(data.length);
  await device.read(back, base);
  const expected = Buffer.from(data);
  expected.fill(0, 1000, 1000 + 1 * MiB + 77);
  expected.fill(0, 1 * MiB + 2000, 1 * MiB + 2000 + 4096);
  assert.ok(back.equals(expected), 'write-zeroes cleared exactly the requested bytes');
  await device.trim(base + 4 * MiB, 1 * MiB);
  await device.trim(base + 6 * MiB + 3, 100);
  await device.flush();
  // A large zero range, as nbdcopy would send.
  await device.writeZeroes(0, 40 * MiB + 4096);
  const zeroes = Buffer.alloc(64 * 1024);
  await device.read(zeroes, 39 * MiB);
  assert.ok(zeroes.every((byte) => byte === 0), 'zeroed');
}

/** Many concurrent small writes that share minimum blocks, then one read. */
export async function checkConcurrentUnaligned(device: NbdDevice): Promise<void> {
  const base = 60 * MiB + 17;
  const pieces = Array.from({ length: 300 }, () => randomBytes(100));
  await Promise.all(pieces.map((piece, i) => device.write(piece, base + i * 100)));
  const back = Buffer.alloc(300 * 100);
  await device.read(back, base);
  assert.ok(back.equals(Buffer.concat(pieces)), 'concurrent unaligned writes all landed');
  const reads = await Promise.all(pieces.map(async (_, i) => {
    const one = Buffer.alloc(100);
    await device.read(one, base + i * 100);
    return one;
  }));
  reads.forEach((one, i) => assert.ok(one.equals(pieces[i]!), `concurrent read ${i}`));
}

export async function checkRangeErrors(device: NbdDevice): Promise<void> {
  await assert.rejects(device.read(Buffer.alloc(512), device.sizeBytes), (error) => isBlockcacheError(error, 'EINVAL'));
  await assert.rejects(device.write(Buffer.alloc(512), device.sizeBytes - 100), (error) => isBlockcacheError(error, 'ENOSPC'));
}

/** Resolves with the error `promise` rejects with; fails if it resolves. */
export async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}
