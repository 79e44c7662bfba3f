import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chooseSuperblock, decodeSuperblock, encodeSuperblock, Superblock } from './superblock.js';
import { computeLayout, SUPERBLOCK_BYTES } from './layout.js';
import { BlockcacheError } from '../stdx/errors.js';

function sample(sequence = 6): Superblock {
  const layout = computeLayout(64 * 1024 * 1024, 4096, 512);
  return {
    uuid: Buffer.from('00112233445566778899aabbccddeeff', 'hex'), sequence, commitSequence: 41,
    blockBytes: 4096, assoc: layout.assoc, assocFull: false, cacheBlocks: layout.cacheBlocks,
    metadataOffsetBytes: layout.metadataOffsetBytes, dataOffsetBytes: layout.dataOffsetBytes, cacheDeviceBytes: 64 * 1024 * 1024,
    mode: 'writeback', policy: 'tinylfu', cleanShutdown: true, originWritesUncommitted: false,
    origin: { sizeBytes: 2 ** 40, name: '/dev/sdb', deviceId: 2049, inode: 77, fingerprint: 0xdeadbeef, fingerprintValid: true },
  };
}

test('superblock round-trips every field', () => {
  const buffer = Buffer.alloc(SUPERBLOCK_BYTES);
  const copy = encodeSuperblock(sample(), buffer);
  assert.equal(copy, 0);
  assert.deepEqual(decodeSuperblock(buffer, copy), sample());
});

test('every corrupted byte of a superblock is rejected', () => {
  const buffer = Buffer.alloc(SUPERBLOCK_BYTES);
  encodeSuperblock(sample(), buffer);
  for (let offset = 0; offset < SUPERBLOCK_BYTES; offset++) {
    const damaged = Buffer.from(buffer);
    damaged[offset] = damaged[offset]! ^ 0x5a;
    assert.throws(() => decodeSuperblock(damaged, 0), (error: unknown) =>
      error instanceof BlockcacheError && ['CORRUPT', 'NOT_A_CACHE'].includes(error.code), `byte ${offset}`);
  }
});

test('a copy found at the other offset is rejected; the newest valid copy wins', () => {
  const even = Buffer.alloc(SUPERBLOCK_BYTES);
  const odd = Buffer.alloc(SUPERBLOCK_BYTES);
  encodeSuperblock(sample(6), even);
  encodeSuperblock(sample(7), odd);
  assert.throws(() => decodeSuperblock(even, 1), /claims to be copy 0/);
  assert.equal(chooseSuperblock([even, odd]).superblock.sequence, 7);
  odd[200] = odd[200]! ^ 1;
  const chosen = chooseSuperblock([even, odd]);
  assert.equal(chosen.superblock.sequence, 6);
  assert.equal(chosen.damagedCopies, 1);
  assert.throws(() => chooseSuperblock([Buffer.alloc(SUPERBLOCK_BYTES), Buffer.alloc(SUPERBLOCK_BYTES)]), /no blockcache superblock/);
});

test('layout fits the device, aligns the data region and rejects bad geometry', () => {
  const layout = computeLayout(100 * 1024 * 1024 + 12345, 65536, 64);
  assert.equal(layout.cacheBlocks % 64, 0);
  assert.equal(layout.dataOffsetBytes % 65536, 0);
  assert.ok(layout.dataOffsetBytes + layout.cacheBlocks * 65536 <= 100 * 1024 * 1024 + 12345);
  assert.ok(layout.metadataOffsetBytes + layout.cacheBlocks * 32 <= layout.dataOffsetBytes);
  const full = computeLayout(10 * 1024 * 1024, 4096, 'full');
  assert.equal(full.assoc, full.cacheBlocks);
  assert.throws(() => computeLayout(1 << 30, 3000, 512), /power of two/);
  assert.throws(() => computeLayout(1 << 30, 2 << 20, 512), /power of two/);
  assert.throws(() => computeLayout(1 << 30, 4096, 12), /power of two/);
  assert.throws(() => computeLayout(1 << 20, 4096, 512), /too small/);
});
