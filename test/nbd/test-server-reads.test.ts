// The server's socket reads: into one reused receive buffer per connection, with
// large WRITE payloads read straight from the socket (src/nbd/socket-adoption.ts),
// or through 'data' events. Concurrent writes of mixed sizes (pipelined requests
// that straddle reads, payloads that start inside a read and continue in
// direct reads) must land exactly; then a clean disconnect, and the server's
// connection bookkeeping lets shutdown finish. A request header split across two
// reads must survive the second read reusing the receive buffer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MemoryDevice } from '../../src/devices/memory-device.js';
import { NbdServer } from '../../src/nbd/server.js';
import { NbdDevice } from '../../src/nbd/nbd-device.js';
import { ByteQueue } from '../../src/nbd/byte-queue.js';
import * as P from '../../src/nbd/protocol.js';
import { Prng } from '../../src/testing/prng.js';
import { RawNbd } from '../support/nbd-raw.js';

const MiB = 1024 * 1024;
const DEVICE_BYTES = 64 * MiB;
/** Request sizes: a byte, small, around the direct-read threshold, large, and odd. */
const SIZES = [1, 512, 4096, 4096 * 3 + 7, 32 * 1024 - 1, 32 * 1024 + 1, 100_000, MiB, MiB + 4093, 3 * MiB];

for (const ownReadBuffers of [true, false]) {
  test(`concurrent writes of mixed sizes land exactly (${ownReadBuffers ? 'own read buffers' : 'data events'})`, async () => {
    const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'blockcache-server-reads-'));
    const device = new MemoryDevice(DEVICE_BYTES);
    const server = await NbdServer.start({ device, socketPath: path.join(directory, 'nbd.sock'), ownReadBuffers });
    const client = await NbdDevice.connect(server.uris[0]!);
    try {
      const model = Buffer.alloc(DEVICE_BYTES);
      const random = new Prng(ownReadBuffers ? 7 : 8);
      for (let round = 0; round < 12; round++) {
        // Up to 32 writes in flight, over disjoint ranges (their order is then irrelevant).
        const writes: Promise<void>[] = [];
        const slice = DEVICE_BYTES / 32;
        for (let i = 0; i < 32; i++) {
          const length = Math.min(SIZES[random.below(SIZES.length)]!, slice);
          const offset = i * slice + random.below(slice - length + 1);
          const data = Buffer.alloc(length);
          for (let at = 0; at < length; at++) data[at] = (offset + at + round * 31) & 0xff;
          data.copy(model, offset);
          writes.push(client.write(data, offset));
        }
        await Promise.all(writes);
      }
      const got = Buffer.alloc(DEVICE_BYTES);
      for (let at = 0; at < DEVICE_BYTES; at += 4 * MiB) await client.read(got.subarray(at, at + 4 * MiB), at);
      assert.ok(got.equals(model), 'what was written reads back over NBD');
      const stored = Buffer.alloc(DEVICE_BYTES);
      await device.read(stored, 0);
      assert.ok(stored.equals(model), 'the device holds exactly what was written');
    } finally {
      await client.close();
      await server.shutdown(); // returns only once the server counts the connection gone
      fs.rmSync(directory, { recursive: true, force: true });
    }
  });
}

test('a request header split across two reads survives the second read reusing the receive buffer', async () => {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'blockcache-server-reads-'));
  const device = new MemoryDevice(MiB);
  const server = await NbdServer.start({ device, socketPath: path.join(directory, 'nbd.sock') });
  const raw = await RawNbd.connect(server.uris[0]!);
  try {
    await raw.open({ structured: false });
    // 64 WRITEs of 8 bytes, pipelined: 36 bytes each on the wire.
    const stream = Buffer.concat(Array.from({ length: 64 }, (_, i) => {
      const header = Buffer.alloc(28);
      header.writeUInt32BE(P.NBD_REQUEST_MAGIC, 0);
      header.writeUInt16BE(P.NBD_CMD_WRITE, 6);
      header.writeBigUInt64BE(BigInt(i), 8);
      header.writeBigUInt64BE(BigInt(i * 8), 16);
      header.writeUInt32BE(8, 24);
      return Buffer.concat([header, Buffer.alloc(8, i + 1)]);
    }));
    // The first read ends 20 bytes into the 11th header; the second is longer, so it
    // overwrites the part of the receive buffer where those 20 bytes arrived.
    const split = 36 * 10 + 20;
    raw.write(stream.subarray(0, split));
    for (let i = 0; i < 10; i++) assert.equal((await raw.readSimpleReply()).error, 0);
    raw.write(stream.subarray(split));
    for (let i = 10; i < 64; i++) assert.equal((await raw.readSimpleReply()).error, 0, `request ${i}`);
    const stored = Buffer.alloc(64 * 8);
    await device.read(stored, 0);
    for (let i = 0; i < 64; i++) assert.ok(stored.subarray(i * 8, i * 8 + 8).equals(Buffer.alloc(8, i + 1)), `request ${i}'s bytes`);
  } finally {
    raw.close();
    await server.shutdown();
    fs.rmSync(directory, { recursive: true, force: true });
  }
});

test('bytes queued from a reused buffer are copied out before it is reused', () => {
  const shared = Buffer.from('abcdefgh');
  const queue = new ByteQueue();
  queue.push(Buffer.from('01'));
  queue.push(shared.subarray(0, 6));
  const first = Buffer.alloc(4);
  queue.copyOut(first, 0, 4); // '01ab'
  queue.ownBytesIn(shared);
  shared.fill('x');
  const rest = Buffer.alloc(4);
  queue.copyOut(rest, 0, 4);
  assert.equal(first.toString(), '01ab');
  assert.equal(rest.toString(), 'cdef');
});
