// Graceful shutdown: in-flight requests finish and get their replies, requests
// arriving after shutdown began get ESHUTDOWN, options get ERR_SHUTDOWN, and the
// socket file is removed. Also: our own client against our own server, TCP.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { test } from 'node:test';
import { randomBytes } from 'node:crypto';
import { MiB } from '../../src/constants.js';
import { BlockDevice } from '../../src/devices/block-device.js';
import { MemoryDevice } from '../../src/devices/memory-device.js';
import { NbdDevice } from '../../src/nbd/nbd-device.js';
import * as P from '../../src/nbd/protocol.js';
import { NbdServer } from '../../src/nbd/server.js';
import { RawNbd } from '../support/nbd-raw.js';
import { makeTempDir } from '../support/temp-dir.js';
import { withTimeout } from '../support/wait.js';
import { checkConcurrentUnaligned, checkRoundTrips, checkZeroTrimFlush } from './client-checks.js';

/** A memory device whose reads wait until released, to hold requests in flight. */
class GatedDevice extends MemoryDevice {
  private gate: Promise<void> | null = null;
  private open: (() => void) | null = null;
  hold(): void { this.gate = new Promise((resolve) => { this.open = resolve; }); }
  release(): void { this.open?.(); this.gate = null; }
  override async read(target: Buffer, offsetBytes: number): Promise<void> {
    if (this.gate !== null) await this.gate;
    return super.read(target, offsetBytes);
  }
}

test('shutdown finishes in-flight requests, ESHUTDOWN for new ones, ERR_SHUTDOWN in the handshake', async () => {
  const dir = await makeTempDir();
  const device = new GatedDevice(16 * MiB);
  const server = await NbdServer.start({ device, socketPath: dir.file('s.sock') });
  const uri = server.uris[0]!;
  assert.equal(fs.statSync(dir.file('s.sock')).mode & 0o777, 0o600);
  const raw = await RawNbd.connect(uri);
  const handshaking = await RawNbd.connect(uri);
  try {
    await raw.open();
    await handshaking.greeting();
    device.hold();
    raw.request(P.NBD_CMD_READ, 0, 1n, 0n, 4096);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const stopping = server.shutdown();
    await new Promise((resolve) => setTimeout(resolve, 50));
    raw.request(P.NBD_CMD_WRITE, 0, 2n, 0n, 512, Buffer.alloc(512));
    assert.equal(lastType(await handshaking.option(P.NBD_OPT_GO, RawNbd.infoPayload('', []))), P.NBD_REP_ERR_SHUTDOWN);
    const shutdownReply = await raw.readStatus();
    assert.deepEqual(shutdownReply, { cookie: 2n, error: P.NBD_ESHUTDOWN });
    device.release();
    const readReply = await raw.readChunks();
    assert.equal(readReply[0]!.cookie, 1n);
    assert.equal(readReply[0]!.type, P.NBD_REPLY_TYPE_OFFSET_DATA);
    await withTimeout(stopping, 5000, 'shutdown');
    assert.ok(await raw.closedWithin(3000));
    assert.equal(fs.existsSync(dir.file('s.sock')), false);
    assert.equal(server.connectionCount, 0);
  } finally {
    raw.close();
    handshaking.close();
    await server.shutdown();
    await dir.remove();
  }
});

function lastType(replies: { type: number }[]): number {
  return replies[replies.length - 1]!.type;
}

test('NbdDevice against NbdServer over TCP, named export, stale socket handling', async () => {
  const dir = await makeTempDir();
  const memory = new MemoryDevice(128 * MiB);
  const server = await NbdServer.start({ device: memory, exportName: 'disk one', listen: { host: '127.0.0.1', port: 0 }, socketPath: dir.file('s.sock') });
  let device: BlockDevice | null = null;
  try {
    await assert.rejects(NbdServer.start({ device: memory, socketPath: dir.file('s.sock') }), /in use/);
    const tcpUri = server.uris.find((uri) => uri.startsWith('nbd://'))!;
    assert.match(tcpUri, /^nbd:\/\/127\.0\.0\.1:\d+\/disk%20one$/);
    const client = await NbdDevice.connect(tcpUri);
    device = client;
    assert.equal(client.sizeBytes, 128 * MiB);
    assert.equal(client.capabilities.multiConn, true);
    await checkRoundTrips(client);
    await checkZeroTrimFlush(client);
    await checkConcurrentUnaligned(client);
    const data = randomBytes(4096);
    await client.write(data, 5000);
    const back = Buffer.alloc(4096);
    memory.readSync(back, 5000);
    assert.ok(back.equals(data), 'the device behind the server holds the data');
    await assert.rejects(NbdDevice.connect(tcpUri.replace('disk%20one', 'other')), /not found/);
  } finally {
    await device?.close();
    await server.shutdown();
    await dir.remove();
  }
});
