// A client that connects and never finishes the handshake is dropped after the
// handshake timeout, so it cannot hold a connection slot; others are unaffected.
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import { test } from 'node:test';
import { MemoryDevice } from '../../src/devices/memory-device.js';
import { NbdDevice } from '../../src/nbd/nbd-device.js';
import { NbdServer } from '../../src/nbd/server.js';
import { makeTempDir } from '../support/temp-dir.js';
import { withTimeout } from '../support/wait.js';

test('a silent client is disconnected after the handshake timeout', async () => {
  const directory = await makeTempDir();
  const server = await NbdServer.start({ device: new MemoryDevice(1024 * 1024), socketPath: directory.file('s.sock'), handshakeTimeoutMs: 300 });
  try {
    const silent = net.connect(directory.file('s.sock'));
    const closed = new Promise<void>((resolve) => silent.on('close', () => resolve()));
    silent.on('data', () => {}); // read the greeting, answer nothing
    silent.on('error', () => {});
    await withTimeout(closed, 5000, 'the server to drop a silent client');
    const client = await NbdDevice.connect(`nbd+unix:///?socket=${directory.file('s.sock')}`);
    const buffer = Buffer.alloc(512);
    await client.read(buffer, 0);
    await client.close();
  } finally {
    await server.shutdown();
    await directory.remove();
  }
  assert.ok(true);
});
