import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeRecord, decodeRecordInto, decodeRecordWords, encodeRecord, encodeRecordWords, MetadataRecord, RECORD_DATA_CRC, RECORD_DIRTY, RECORD_VALID, RECORD_WORDS, RECORD_WORDS_NATIVE } from './record.js';
import { RECORD_BYTES } from './layout.js';

const SALT = 0x12345678;

test('records round-trip, including 53-bit origin blocks and sequences', () => {
  const buffer = Buffer.alloc(RECORD_BYTES * 4);
  const records = [
    { originBlock: 0, sequence: 1, dataCrc: 0, flags: RECORD_VALID | RECORD_DIRTY },
    { originBlock: 2 ** 52 + 3, sequence: 2 ** 50, dataCrc: 0xffffffff, flags: RECORD_VALID | RECORD_DATA_CRC },
    { originBlock: 99, sequence: 7, dataCrc: 0, flags: 0 },
  ];
  records.forEach((record, i) => encodeRecord(record, 1000 + i, SALT, buffer, i * RECORD_BYTES));
  records.forEach((record, i) => assert.deepEqual(decodeRecord(buffer, i * RECORD_BYTES, 1000 + i, SALT), { kind: 'record', ...record }));
  assert.deepEqual(decodeRecord(buffer, 3 * RECORD_BYTES, 1003, SALT), { kind: 'empty' });
});

test('every corrupted byte of a record makes it corrupt, never another valid record', () => {
  const buffer = Buffer.alloc(RECORD_BYTES);
  encodeRecord({ originBlock: 4242, sequence: 9, dataCrc: 0xabcdef01, flags: RECORD_VALID | RECORD_DATA_CRC }, 17, SALT, buffer, 0);
  for (let offset = 0; offset < RECORD_BYTES; offset++) {
    for (const mask of [0x01, 0x80, 0xff]) {
      const damaged = Buffer.from(buffer);
      damaged[offset] = damaged[offset]! ^ mask;
      assert.equal(decodeRecord(damaged, 0, 17, SALT).kind, 'corrupt', `byte ${offset} mask ${mask}`);
    }
  }
});

test('a record is corrupt at the wrong slot or under another cache\'s salt', () => {
  const buffer = Buffer.alloc(RECORD_BYTES);
  encodeRecord({ originBlock: 5, sequence: 1, dataCrc: 0, flags: RECORD_VALID }, 3, SALT, buffer, 0);
  assert.equal(decodeRecord(buffer, 0, 4, SALT).kind, 'corrupt');
  assert.equal(decodeRecord(buffer, 0, 3, SALT + 1).kind, 'corrupt');
  assert.throws(() => encodeRecord({ originBlock: 5, sequence: 1, dataCrc: 0, flags: RECORD_DIRTY }, 3, SALT, buffer, 0), /dirty implies valid/);
});

test('the word decoder agrees with the byte decoder on valid, empty and damaged records', { skip: !RECORD_WORDS_NATIVE }, () => {
  const count = 64;
  const buffer = Buffer.alloc(RECORD_BYTES * count);
  for (let i = 0; i < count; i++) {
    if (i % 5 === 4) continue; // empty
    encodeRecord({ originBlock: i * 2 ** 30 + i, sequence: 2 ** 40 + i, dataCrc: i * 0x01010101, flags: i % 3 === 0 ? RECORD_VALID | RECORD_DIRTY : RECORD_VALID | RECORD_DATA_CRC }, 1000 + i, SALT, buffer, i * RECORD_BYTES);
  }
  buffer[3 * RECORD_BYTES + 5] ^= 0x10; // checksum
  buffer.writeUInt32LE(0, 7 * RECORD_BYTES + 28); // checksum zeroed, the rest not empty
  const words = new Int32Array(buffer.buffer, buffer.byteOffset, buffer.length / 4);
  for (let i = 0; i < count; i++) {
    for (const slot of [1000 + i, 1001 + i]) {
      const byBytes: MetadataRecord = { originBlock: -1, sequence: -1, dataCrc: -1, flags: -1 };
      const byWords: MetadataRecord = { originBlock: -1, sequence: -1, dataCrc: -1, flags: -1 };
      assert.equal(decodeRecordWords(words, i * RECORD_WORDS, slot, SALT, byWords), decodeRecordInto(buffer, i * RECORD_BYTES, slot, SALT, byBytes), `record ${i} at ${slot}`);
      assert.deepEqual(byWords, byBytes);
    }
  }
});

test('the word encoder writes the same bytes as the byte encoder', { skip: !RECORD_WORDS_NATIVE }, () => {
  const byBytes = Buffer.alloc(RECORD_BYTES);
  const byWords = Buffer.alloc(RECORD_BYTES);
  const words = new Int32Array(byWords.buffer, byWords.byteOffset, RECORD_WORDS);
  const cases: [MetadataRecord, number][] = [
    [{ originBlock: 0, sequence: 0, dataCrc: 0, flags: RECORD_VALID }, 0],
    [{ originBlock: 2 ** 32 - 1, sequence: 2 ** 31, dataCrc: 0xffffffff, flags: RECORD_VALID | RECORD_DATA_CRC }, 2 ** 32 - 1],
    [{ originBlock: 2 ** 40 + 7, sequence: 2 ** 45 + 3, dataCrc: 0x80000001, flags: RECORD_VALID | RECORD_DIRTY }, 123_456],
  ];
  for (const [record, slot] of cases) {
    encodeRecord(record, slot, SALT, byBytes, 0);
    encodeRecordWords(words, 0, slot, SALT, record.originBlock, record.sequence, record.dataCrc, record.flags);
    assert.deepEqual(byWords, byBytes, JSON.stringify(record));
    const decoded: MetadataRecord = { originBlock: -1, sequence: -1, dataCrc: -1, flags: -1 };
    assert.equal(decodeRecordWords(words, 0, slot, SALT, decoded), 1);
    assert.deepEqual(decoded, record);
  }
  assert.throws(() => encodeRecordWords(words, 0, 3, SALT, 5, 1, 0, RECORD_DIRTY), /dirty implies valid/);
});
