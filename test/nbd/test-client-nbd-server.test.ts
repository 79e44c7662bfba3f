// NbdDevice against nbd-server 3.24: no structured replies at all, so every
// READ comes back as a simple reply with its data.
import * as assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { MiB } from '../../src/constants.js';
import { NbdDevice } from '../../src/nbd/nbd-device.js';
import * as P from '../../src/nbd/protocol.js';
import { startNbdServer } from '../support/nbd-servers.js';
import { checkConcurrentUnaligned, checkRoundTrips, checkZeroTrimFlush } from './client-checks.js';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
});

describe('NbdDevice against nbd-server', () => {
  test('simple replies: round trips, zeroes, trim, flush, concurrency', async () => {
    const target = await startNbdServer(128 * MiB, 'disk');
    cleanups.push(() => target.stop());
    const device = await NbdDevice.connect(target.uri);
    cleanups.push(() => device.close());
    assert.equal(device.sizeBytes, 128 * MiB);
    assert.equal(device.structuredReplies, false);
    assert.ok((device.transmissionFlags & P.NBD_FLAG_SEND_FLUSH) !== 0);
    await checkRoundTrips(device);
    await checkZeroTrimFlush(device);
    await checkConcurrentUnaligned(device);
  });
});
