// NbdDevice against qemu-nbd (OFFSET_HOLE chunks, INFO_BLOCK_SIZE, context ID 0)
// and its refusal of an unknown export name.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { after, describe, test } from 'node:test';
import { MiB } from '../../src/constants.js';
import { NbdDevice } from '../../src/nbd/nbd-device.js';
import { isBlockcacheError } from '../../src/stdx/errors.js';
import { startQemuNbd } from '../support/nbd-servers.js';
import { checkConcurrentUnaligned, checkRangeErrors, checkRoundTrips, checkZeroTrimFlush, rejection } from './client-checks.js';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
});

describe('NbdDevice against qemu-nbd', () => {
  test('round trips, holes read as zero, data reaches the image file', async () => {
    const target = await startQemuNbd(128 * MiB, 'disk');
    cleanups.push(() => target.stop());
    const device = await NbdDevice.connect(target.uri);
    cleanups.push(() => device.close());
    assert.equal(device.sizeBytes, 128 * MiB);
    assert.equal(device.structuredReplies, true);
    // A sparse read: qemu-nbd answers with OFFSET_HOLE chunks.
    const hole = Buffer.alloc(2 * MiB, 0xee);
    await device.read(hole, 100 * MiB);
    assert.ok(hole.every((byte) => byte === 0), 'holes read back as zeroes');
    await checkRoundTrips(device);
    await checkZeroTrimFlush(device);
    await checkConcurrentUnaligned(device);
    await checkRangeErrors(device);
    await device.write(Buffer.from('qemu-nbd-check'), 77 * MiB + 3, { fua: true });
    await device.flush();
    const file = await fs.promises.open(target.imagePath, 'r');
    const fromFile = Buffer.alloc(14);
    await file.read(fromFile, 0, 14, 77 * MiB + 3);
    await file.close();
    assert.equal(fromFile.toString(), 'qemu-nbd-check');
  });

  test('unknown export name is refused with a clear error', async () => {
    const target = await startQemuNbd(16 * MiB, 'disk');
    cleanups.push(() => target.stop());
    const error = await rejection(NbdDevice.connect(target.uri.replace('/disk?', '/nope?')));
    assert.ok(isBlockcacheError(error, 'NBD_REFUSED'), String(error));
    assert.match(error.message, /nope/);
  });

  test('nothing listening and TLS URIs fail clearly', async () => {
    const refused = await rejection(NbdDevice.connect('nbd+unix:///x?socket=/nonexistent/blockcache.sock'));
    assert.ok(isBlockcacheError(refused, 'DEVICE_OPEN'), String(refused));
    const tls = await rejection(NbdDevice.connect('nbds://127.0.0.1/x'));
    assert.ok(isBlockcacheError(tls, 'DEVICE_OPEN'), String(tls));
    assert.match(tls.message, /TLS/);
  });
});
