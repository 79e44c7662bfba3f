// Section F of nbd-conformance.md: raw wire checks, written over net.Socket
// because libnbd refuses to send malformed traffic. After each check a fresh
// connection must still work (assertServerAlive), which catches crashes.
import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as P from '../../src/nbd/protocol.js';
import { RawNbd, assertServerAlive } from './nbd-raw.js';
import type { SuiteContext } from './conformance.js';

const MiB = 1024 * 1024;

async function withRaw(uri: string, body: (raw: RawNbd) => Promise<void>): Promise<void> {
  const raw = await RawNbd.connect(uri);
  try {
    await body(raw);
  } finally {
    raw.close();
  }
  await assertServerAlive(uri);
}

function lastType(replies: { type: number }[]): number {
  return replies[replies.length - 1]!.type;
}

export function defineRawWireChecks(c: SuiteContext): void {
  describe('F. raw wire checks', () => {
    test('F greeting, unknown option, EXTENDED_HEADERS, LIST, SR, STARTTLS, INFO, block sizes', async () => {
      await withRaw(c.uri, async (raw) => {
        await raw.greeting();
        assert.equal(raw.handshakeFlags & P.NBD_FLAG_FIXED_NEWSTYLE, P.NBD_FLAG_FIXED_NEWSTYLE);
        assert.equal(raw.handshakeFlags & ~3, 0, 'no unknown handshake bits');
        assert.equal(lastType(await raw.option(0x4242, Buffer.from('abcde'))), P.NBD_REP_ERR_UNSUP);
        assert.equal(lastType(await raw.option(P.NBD_OPT_EXTENDED_HEADERS)), P.NBD_REP_ERR_UNSUP);
        const list = await raw.option(P.NBD_OPT_LIST);
        assert.ok(list.filter((r) => r.type === P.NBD_REP_SERVER).length >= 1);
        assert.equal(lastType(list), P.NBD_REP_ACK);
        assert.equal(lastType(await raw.option(P.NBD_OPT_LIST, Buffer.from('x'))), P.NBD_REP_ERR_INVALID);
        assert.equal(lastType(await raw.option(P.NBD_OPT_SET_META_CONTEXT, RawNbd.metaPayload(raw.exportName, ['base:allocation']))), P.NBD_REP_ERR_INVALID, 'SET_META before SR');
        assert.equal(lastType(await raw.option(P.NBD_OPT_STRUCTURED_REPLY, Buffer.from('x'))), P.NBD_REP_ERR_INVALID);
        assert.equal(lastType(await raw.option(P.NBD_OPT_STRUCTURED_REPLY)), P.NBD_REP_ACK);
        assert.ok([P.NBD_REP_ACK, P.NBD_REP_ERR_INVALID].includes(lastType(await raw.option(P.NBD_OPT_STRUCTURED_REPLY))));
        assert.ok([P.NBD_REP_ERR_UNSUP, P.NBD_REP_ERR_POLICY].includes(lastType(await raw.option(P.NBD_OPT_STARTTLS))));
        const info = await raw.option(P.NBD_OPT_INFO, RawNbd.infoPayload(raw.exportName, [P.NBD_INFO_BLOCK_SIZE]));
        assert.equal(lastType(info), P.NBD_REP_ACK);
        const exportInfo = info.find((r) => r.type === P.NBD_REP_INFO && r.data.readUInt16BE(0) === P.NBD_INFO_EXPORT)!;
        assert.equal(exportInfo.data.length, 12);
        assert.equal(Number(exportInfo.data.readBigUInt64BE(2)), c.sizeBytes);
        assert.ok((exportInfo.data.readUInt16BE(10) & P.NBD_FLAG_HAS_FLAGS) !== 0);
        const blockSize = info.find((r) => r.type === P.NBD_REP_INFO && r.data.readUInt16BE(0) === P.NBD_INFO_BLOCK_SIZE);
        if (blockSize !== undefined) {
          assert.equal(blockSize.data.length, 14);
          assert.equal(c.sizeBytes % blockSize.data.readUInt32BE(2), 0, 'size is a multiple of the minimum');
        }
        // Name length overrunning the option: ERR_INVALID, session continues.
        const bad = Buffer.alloc(6);
        bad.writeUInt32BE(1000, 0);
        assert.equal(lastType(await raw.option(P.NBD_OPT_INFO, bad)), P.NBD_REP_ERR_INVALID);
        const unknown = await raw.option(P.NBD_OPT_INFO, RawNbd.infoPayload('--bad-export', []));
        assert.ok([P.NBD_REP_ERR_UNKNOWN, P.NBD_REP_ACK].includes(lastType(unknown)));
        if (lastType(unknown) !== P.NBD_REP_ACK) assert.equal(unknown.length, 1, 'no INFO replies before ERR_UNKNOWN');
        const metaList = await raw.option(P.NBD_OPT_LIST_META_CONTEXT, RawNbd.metaPayload(raw.exportName, ['base:']));
        assert.ok(metaList.some((r) => r.type === P.NBD_REP_META_CONTEXT && r.data.toString('utf8', 4) === 'base:allocation'));
        const metaSet = await raw.option(P.NBD_OPT_SET_META_CONTEXT, RawNbd.metaPayload(raw.exportName, ['x-unknown:thing', 'base:allocation']));
        assert.equal(metaSet.filter((r) => r.type === P.NBD_REP_META_CONTEXT).length, 1, 'unknown namespace ignored');
        assert.equal(lastType(await raw.option(P.NBD_OPT_ABORT)), P.NBD_REP_ACK);
        assert.ok(await raw.closedWithin(3000), 'closes after ABORT');
      });
    });

    test('F GO with zero info requests, then READ right after ACK (no padding)', async () => {
      await withRaw(c.uri, async (raw) => {
        await raw.greeting();
        const go = await raw.option(P.NBD_OPT_GO, RawNbd.infoPayload(raw.exportName, []));
        assert.equal(lastType(go), P.NBD_REP_ACK);
        raw.request(P.NBD_CMD_READ, 0, 1n, 0n, 4096);
        const reply = await raw.readSimpleReply();
        assert.equal(reply.error, 0);
        assert.equal((await raw.read(4096)).length, 4096);
      });
    });

    test('F client flags 0x81 close; bad option magic closes; absurd option length refused quickly', async () => {
      await withRaw(c.uri, async (raw) => {
        await raw.greeting(0x81);
        assert.ok(await raw.closedWithin(3000));
      });
      await withRaw(c.uri, async (raw) => {
        await raw.greeting();
        raw.sendOption(P.NBD_OPT_GO, Buffer.alloc(0), 0, 0x1234n);
        assert.ok(await raw.closedWithin(3000));
      });
      await withRaw(c.uri, async (raw) => {
        await raw.greeting();
        raw.sendOption(P.NBD_OPT_GO, Buffer.alloc(0), 0x7fffffff);
        assert.ok(await raw.closedWithin(3000), 'disconnect (or error) within 3 s');
      });
    });

    test('F EXPORT_NAME: 124-byte pad without NO_ZEROES, exactly 10 bytes with it, unknown export closes', async () => {
      await withRaw(c.uri, async (raw) => {
        await raw.greeting(P.NBD_FLAG_C_FIXED_NEWSTYLE);
        raw.sendOption(P.NBD_OPT_EXPORT_NAME, Buffer.from(raw.exportName));
        const reply = await raw.read(134);
        assert.equal(Number(reply.readBigUInt64BE(0)), c.sizeBytes);
        assert.equal(reply.readUInt16BE(8) & P.NBD_FLAG_SEND_DF, 0, 'DF clear without SR');
        assert.ok(reply.subarray(10).every((byte) => byte === 0));
        raw.request(P.NBD_CMD_READ, 0, 5n, 0n, 512);
        assert.equal((await raw.readSimpleReply()).error, 0);
        await raw.read(512);
      });
      await withRaw(c.uri, async (raw) => {
        await raw.greeting();
        raw.sendOption(P.NBD_OPT_EXPORT_NAME, Buffer.from(raw.exportName));
        await raw.read(10);
        raw.request(P.NBD_CMD_READ, 0, 6n, 0n, 512);
        const first = await raw.read(4);
        assert.equal(first.readUInt32BE(0), P.NBD_SIMPLE_REPLY_MAGIC, 'exactly 10 bytes then the reply');
        await raw.read(12 + 512);
      });
      await withRaw(c.uri, async (raw) => {
        await raw.greeting();
        raw.sendOption(P.NBD_OPT_EXPORT_NAME, Buffer.from('--bad-export'));
        // A server that accepts any name answers 10 bytes instead; both are conforming.
        const closed = await raw.closedWithin(2000);
        if (!closed) assert.ok(raw.pendingBytes >= 0);
      });
    });

    test('F transmission without SR: cookies echoed, pipelining, errors without payload, drained WRITE', async () => {
      await withRaw(c.uri, async (raw) => {
        await raw.open({ structured: false });
        raw.request(P.NBD_CMD_READ, 0, 0n, 0n, 16);
        raw.request(P.NBD_CMD_READ, 0, 0xffffffffffffffffn, 16n, 16);
        // Replies may come in any order (the spec allows it); both cookies must come back intact.
        const cookies = new Set<bigint>();
        for (let i = 0; i < 2; i++) {
          const reply = await raw.readSimpleReply();
          cookies.add(reply.cookie);
          await raw.read(16);
        }
        assert.deepEqual([...cookies].sort(), [0n, 0xffffffffffffffffn]);
        for (let i = 0; i < 32; i++) raw.request(P.NBD_CMD_READ, 0, BigInt(1000 + i), BigInt(i * 4096), 4096);
        const seen = new Set<bigint>();
        for (let i = 0; i < 32; i++) {
          const reply = await raw.readSimpleReply();
          assert.equal(reply.error, 0);
          await raw.read(4096);
          seen.add(reply.cookie);
        }
        assert.equal(seen.size, 32);
        raw.request(P.NBD_CMD_READ, 0, 77n, BigInt(c.sizeBytes), 512);
        raw.request(P.NBD_CMD_WRITE, 0, 78n, BigInt(c.sizeBytes - 100), 512, Buffer.alloc(512, 9));
        raw.request(P.NBD_CMD_READ, 0, 79n, 0n, 8);
        assert.deepEqual(await raw.readSimpleReply(), { error: P.NBD_EINVAL, cookie: 77n });
        assert.deepEqual(await raw.readSimpleReply(), { error: P.NBD_ENOSPC, cookie: 78n });
        assert.deepEqual(await raw.readSimpleReply(), { error: 0, cookie: 79n });
        await raw.read(8);
      });
    });

    test('F transmission with SR: chunks tile READ, error chunks, unknown command/flags, FUA, zeroes, DF, BLOCK_STATUS', async () => {
      await withRaw(c.uri, async (raw) => {
        const { flags } = await raw.open({ baseAllocation: true });
        assert.ok((flags & P.NBD_FLAG_SEND_DF) !== 0);
        raw.request(P.NBD_CMD_WRITE, P.NBD_CMD_FLAG_FUA, 1n, 300n * BigInt(MiB) >> 1n, 4096, Buffer.alloc(4096, 0x5a));
        assert.equal((await raw.readStatus()).error, 0);
        const base = 150n * BigInt(MiB);
        raw.request(P.NBD_CMD_READ, P.NBD_CMD_FLAG_FUA, 2n, base, 65536);
        const chunks = await raw.readChunks();
        let covered = 0;
        for (const chunk of chunks) {
          if (chunk.type === P.NBD_REPLY_TYPE_OFFSET_DATA) covered += chunk.data.length - 8;
          else if (chunk.type === P.NBD_REPLY_TYPE_OFFSET_HOLE) covered += chunk.data.readUInt32BE(8);
        }
        assert.equal(covered, 65536, 'chunks tile the range');
        raw.request(P.NBD_CMD_READ, P.NBD_CMD_FLAG_DF, 3n, base, 65536);
        const df = await raw.readChunks();
        assert.ok(df.filter((chunk) => chunk.type === P.NBD_REPLY_TYPE_OFFSET_DATA).length <= 1);
        assert.ok(!df.some((chunk) => chunk.type === P.NBD_REPLY_TYPE_OFFSET_HOLE));
        raw.request(P.NBD_CMD_READ, 0, 4n, BigInt(c.sizeBytes), 512);
        const errorReply = await raw.readAnyReply();
        assert.ok('chunk' in errorReply && (errorReply.chunk.type & P.NBD_REPLY_TYPE_ERROR_BIT) !== 0, 'SR READ error is an error chunk');
        raw.request(0x42, 0, 5n, 0n, 0);
        assert.equal((await raw.readStatus()).error, P.NBD_EINVAL, 'unknown command');
        raw.request(P.NBD_CMD_READ, 0x8000, 6n, 0n, 512);
        assert.equal((await raw.readStatus()).error, P.NBD_EINVAL, 'unknown flag');
        raw.request(P.NBD_CMD_WRITE, P.NBD_CMD_FLAG_NO_HOLE, 7n, 0n, 512, Buffer.alloc(512));
        assert.equal((await raw.readStatus()).error, P.NBD_EINVAL, 'NO_HOLE on WRITE');
        raw.request(P.NBD_CMD_READ, 0, 8n, 0xffffffffffffff00n, 0x1000);
        assert.equal((await raw.readStatus()).error, P.NBD_EINVAL, 'offset+length wrapping 2^64');
        raw.request(P.NBD_CMD_FLUSH, 0, 9n, 0n, 0);
        assert.equal((await raw.readStatus()).error, 0);
        raw.request(P.NBD_CMD_WRITE, 0, 10n, base, 8192, Buffer.alloc(8192, 0x77));
        raw.request(P.NBD_CMD_WRITE_ZEROES, P.NBD_CMD_FLAG_NO_HOLE, 11n, base, 4096);
        raw.request(P.NBD_CMD_WRITE_ZEROES, 0, 12n, base + 4096n, 4096);
        for (let i = 0; i < 3; i++) assert.equal((await raw.readStatus()).error, 0);
        raw.request(P.NBD_CMD_READ, 0, 13n, base, 8192);
        const zeroed = await raw.readChunks();
        for (const chunk of zeroed) {
          if (chunk.type === P.NBD_REPLY_TYPE_OFFSET_DATA) assert.ok(chunk.data.subarray(8).every((byte) => byte === 0));
        }
        raw.request(P.NBD_CMD_WRITE_ZEROES, P.NBD_CMD_FLAG_FAST_ZERO, 14n, base, 4096);
        assert.ok([0, P.NBD_ENOTSUP].includes((await raw.readStatus()).error));
        raw.request(P.NBD_CMD_WRITE_ZEROES, 0, 15n, 64n * BigInt(MiB), 64 * MiB);
        raw.request(P.NBD_CMD_TRIM, 0, 16n, 128n * BigInt(MiB), 64 * MiB);
        assert.equal((await raw.readStatus()).error, 0, '64 MiB WRITE_ZEROES');
        assert.equal((await raw.readStatus()).error, 0, '64 MiB TRIM');
        raw.request(P.NBD_CMD_TRIM, 0, 17n, BigInt(c.sizeBytes), 512);
        raw.request(P.NBD_CMD_CACHE, 0, 18n, BigInt(c.sizeBytes), 512);
        assert.equal((await raw.readStatus()).error, P.NBD_EINVAL);
        assert.equal((await raw.readStatus()).error, P.NBD_EINVAL);
        raw.request(P.NBD_CMD_BLOCK_STATUS, 0, 19n, 0n, c.sizeBytes);
        const status = await raw.readChunks();
        const block = status.find((chunk) => chunk.type === P.NBD_REPLY_TYPE_BLOCK_STATUS)!;
        assert.ok(block.data.length >= 12 && (block.data.length - 4) % 8 === 0);
        raw.request(P.NBD_CMD_BLOCK_STATUS, P.NBD_CMD_FLAG_REQ_ONE, 20n, 0n, c.sizeBytes);
        const one = (await raw.readChunks()).find((chunk) => chunk.type === P.NBD_REPLY_TYPE_BLOCK_STATUS)!;
        assert.equal(one.data.length, 12, 'REQ_ONE: one extent');
        assert.ok(one.data.readUInt32BE(4) <= c.sizeBytes);
        raw.request(P.NBD_CMD_BLOCK_STATUS, 0, 21n, BigInt(c.sizeBytes), 512);
        assert.equal((await raw.readStatus()).error, P.NBD_EINVAL);
      });
    });

    test('F zero-length I/O, 32 MiB WRITE+READ, oversized WRITE, BLOCK_STATUS without context', async () => {
      await withRaw(c.uri, async (raw) => {
        await raw.open();
        raw.request(P.NBD_CMD_READ, 0, 1n, 0n, 0);
        await raw.readStatus();
        raw.request(P.NBD_CMD_WRITE, 0, 2n, 0n, 0);
        await raw.readStatus();
        raw.request(P.NBD_CMD_BLOCK_STATUS, 0, 3n, 0n, 512);
        assert.equal((await raw.readStatus()).error, P.NBD_EINVAL);
        const big = Buffer.alloc(32 * MiB, 0x3c);
        raw.request(P.NBD_CMD_WRITE, 0, 4n, 0n, big.length, big);
        assert.equal((await raw.readStatus()).error, 0);
        raw.request(P.NBD_CMD_READ, 0, 5n, 0n, big.length);
        const chunks = await raw.readChunks();
        const data = Buffer.concat(chunks.filter((chunk) => chunk.type === P.NBD_REPLY_TYPE_OFFSET_DATA).map((chunk) => chunk.data.subarray(8)));
        assert.equal(data.length, big.length);
        assert.ok(data.equals(big));
        const over = Buffer.alloc(48 * MiB, 1);
        raw.request(P.NBD_CMD_WRITE, 0, 6n, 0n, over.length, over);
        raw.request(P.NBD_CMD_READ, 0, 7n, 0n, 8);
        try {
          // An error, or success: either way still in sync, and replies may come in any order.
          const first = await raw.readStatus();
          const second = await raw.readStatus();
          assert.deepEqual([first.cookie, second.cookie].sort(), [6n, 7n]);
        } catch (error) {
          assert.match(String(error), /closed/, 'or a disconnect');
        }
      });
    });

    test('F bad request magic disconnects; DISC closes without a reply', async () => {
      await withRaw(c.uri, async (raw) => {
        await raw.open();
        raw.request(P.NBD_CMD_READ, 0, 1n, 0n, 512, undefined, 0x12345678);
        assert.ok(await raw.closedWithin(3000));
      });
      await withRaw(c.uri, async (raw) => {
        await raw.open();
        raw.request(P.NBD_CMD_DISC, 0, 1n, 0n, 0);
        assert.ok(await raw.closedWithin(3000));
        assert.equal(raw.pendingBytes, 0);
      });
    });

    test('F abrupt EOF mid-option, mid-header, mid-WRITE payload, with 16 requests in flight', async () => {
      const cut = async (body: (raw: RawNbd) => Promise<void>): Promise<void> => {
        const raw = await RawNbd.connect(c.uri);
        await body(raw);
        raw.close();
      };
      await cut(async (raw) => { await raw.greeting(); raw.write(Buffer.from('IHAVEOPT').subarray(0, 5)); });
      await cut(async (raw) => { await raw.open(); raw.write(Buffer.alloc(10)); });
      await cut(async (raw) => {
        await raw.open();
        raw.request(P.NBD_CMD_WRITE, 0, 1n, 0n, 65536, Buffer.alloc(1000));
      });
      await cut(async (raw) => {
        await raw.open();
        for (let i = 0; i < 16; i++) raw.request(P.NBD_CMD_READ, 0, BigInt(i), BigInt(i) * 1048576n, 1048576);
      });
      await new Promise((resolve) => setTimeout(resolve, 200));
      await assertServerAlive(c.uri);
    });

    test('F write + FLUSH on connection A is visible on connection B', async () => {
      const a = await RawNbd.connect(c.uri);
      const b = await RawNbd.connect(c.uri);
      try {
        await a.open();
        await b.open();
        const data = Buffer.from('multi-conn coherence check');
        a.request(P.NBD_CMD_WRITE, 0, 1n, 200n * BigInt(MiB) + 3n, data.length, data);
        assert.equal((await a.readStatus()).error, 0);
        a.request(P.NBD_CMD_FLUSH, 0, 2n, 0n, 0);
        assert.equal((await a.readStatus()).error, 0);
        b.request(P.NBD_CMD_READ, 0, 3n, 200n * BigInt(MiB) + 3n, data.length);
        const chunks = await b.readChunks();
        const read = chunks.find((chunk) => chunk.type === P.NBD_REPLY_TYPE_OFFSET_DATA)!;
        assert.equal(read.data.subarray(8).toString(), data.toString());
      } finally {
        a.close();
        b.close();
      }
    });
  });
}
