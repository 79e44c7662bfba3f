// NbdDevice against nbdkit's memory plugin: structured replies, simple replies
// (--no-sr), strict block-size policy (min 4096, max 1 MiB), injected errors,
// and a server killed while requests are in flight.
import * as assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { NbdDevice } from '../../src/nbd/nbd-device.js';
import * as P from '../../src/nbd/protocol.js';
import { isBlockcacheError } from '../../src/stdx/errors.js';
import { NbdTarget, startNbdkit } from '../support/nbd-servers.js';
import { withTimeout } from '../support/wait.js';
import { checkConcurrentReads, checkConcurrentUnaligned, checkRangeErrors, checkRoundTrips, checkZeroTrimFlush, rejection } from './client-checks.js';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
});

async function open(target: NbdTarget): Promise<NbdDevice> {
  cleanups.push(() => target.stop());
  const device = await NbdDevice.connect(target.uri);
  cleanups.push(() => device.close());
  return device;
}

describe('NbdDevice against nbdkit memory', () => {
  test('structured replies: round trips, zeroes, trim, flush, concurrency, range errors', async () => {
    const device = await open(await startNbdkit({ size: '128M' }));
    assert.equal(device.sizeBytes, 128 * 1024 * 1024);
    assert.equal(device.structuredReplies, true);
    assert.equal(device.capabilities.multiConn, true);
    await checkRoundTrips(device);
    await checkConcurrentReads(device);
    await checkZeroTrimFlush(device);
    await checkConcurrentUnaligned(device);
    await checkRangeErrors(device);
  });

  test('simple replies only (--no-sr)', async () => {
    const device = await open(await startNbdkit({ size: '128M', before: ['--no-sr'] }));
    assert.equal(device.structuredReplies, false);
    assert.equal(device.transmissionFlags & P.NBD_FLAG_SEND_DF, 0);
    await checkRoundTrips(device);
    await checkConcurrentReads(device);
    await checkZeroTrimFlush(device);
  });

  test('strict block sizes: min 4096, max 1 MiB, errors on violation', async () => {
    const device = await open(await startNbdkit({
      size: '128M',
      before: ['--filter=blocksize-policy'],
      params: ['blocksize-minimum=4096', 'blocksize-maximum=1M', 'blocksize-error-policy=error'],
    }));
    assert.deepEqual(device.blockSizes, { minimum: 4096, preferred: 4096, maximum: 1024 * 1024 });
    await checkRoundTrips(device);
    await checkZeroTrimFlush(device);
    await checkConcurrentUnaligned(device);
  });

  test('server EIO and ENOSPC become BlockcacheErrors with those codes', async () => {
    const eio = await open(await startNbdkit({ size: '16M', before: ['--filter=error'], params: ['error=EIO', 'error-pread-rate=100%'] }));
    const readError = await rejection(eio.read(Buffer.alloc(4096), 0));
    assert.ok(isBlockcacheError(readError, 'EIO'), String(readError));
    await eio.write(Buffer.alloc(4096, 1), 0); // writes are unaffected
    const enospc = await open(await startNbdkit({ size: '16M', before: ['--filter=error'], params: ['error=ENOSPC', 'error-pwrite-rate=100%'] }));
    const writeError = await rejection(enospc.write(Buffer.alloc(4096, 1), 0));
    assert.ok(isBlockcacheError(writeError, 'ENOSPC'), String(writeError));
  });

  test('server killed with requests in flight: every request rejects, no hang', async () => {
    const target = await startNbdkit({ size: '16M', before: ['--filter=delay'], params: ['rdelay=3'] });
    const device = await open(target);
    const reads = Array.from({ length: 8 }, (_, i) => rejection(device.read(Buffer.alloc(4096), i * 4096)));
    await new Promise((resolve) => setTimeout(resolve, 200));
    await target.process.kill('SIGKILL');
    const errors = await withTimeout(Promise.all(reads), 5000, 'in-flight reads to fail');
    for (const error of errors) {
      assert.ok(isBlockcacheError(error, 'EIO'), String(error));
      assert.match(error.message, /connection closed by server/);
    }
    const later = await rejection(device.read(Buffer.alloc(512), 0));
    assert.match(later.message, /connection closed by server/);
  });
});
