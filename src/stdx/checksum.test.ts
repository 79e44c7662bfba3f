import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { endianness } from 'node:os';
import { crc32c, crc32cRange, crc32cWords } from './checksum.js';

test('crc32cRange equals the native CRC-32C for every length, offset and seed', () => {
  const source = randomBytes(300);
  for (const initial of [0, 1, 0x12345678, 0xffffffff]) {
    for (let offset = 0; offset < 8; offset++) {
      for (let length = 0; length <= 64; length++) {
        assert.equal(crc32cRange(source, offset, length, initial), crc32c(source.subarray(offset, offset + length), initial), `${offset} ${length} ${initial}`);
      }
    }
  }
  // The standard check value: CRC-32C("123456789") = 0xe3069283.
  assert.equal(crc32cRange(Buffer.from('123456789'), 0, 9), 0xe3069283);
});

test('crc32cWords equals the native CRC-32C over the same little-endian bytes', { skip: endianness() !== 'LE' }, () => {
  const source = randomBytes(256);
  const words = new Uint32Array(source.buffer, source.byteOffset, source.length / 4);
  for (let index = 0; index < 8; index++) {
    for (let count = 0; count <= 16; count++) {
      for (const initial of [0, 0x9abcdef0]) {
        assert.equal(crc32cWords(words, index, count, initial) >>> 0, crc32c(source.subarray(index * 4, (index + count) * 4), initial));
      }
    }
  }
});
