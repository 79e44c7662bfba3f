// Unit tests of TimedDevice: results, errors, capabilities and optional
// operations pass through unchanged, and every operation is recorded once
// under its DeviceOp index (readNow/writeNow only when they did the work).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEVICE_OPERATIONS, DeviceOp, DeviceOpIndex, IoObserver, TimedDevice } from './timed-device.js';
import { BlockDevice, DeviceCapabilities, Extent, WriteFlags } from '../devices/block-device.js';
import { MemoryDevice } from '../devices/memory-device.js';
import { BlockcacheError } from '../stdx/errors.js';

class Recorder implements IoObserver {
  readonly seen: Array<[DeviceOpIndex, number]> = [];
  record(operation: DeviceOpIndex, seconds: number): void {
    this.seen.push([operation, seconds]);
  }
  ops(): DeviceOpIndex[] {
    return this.seen.map(([op]) => op);
  }
}

test('results, capabilities and observations pass through', async () => {
  const inner: BlockDevice = new MemoryDevice(1 << 20, 'memory:test');
  const recorder = new Recorder();
  const device = new TimedDevice(inner, recorder);
  assert.equal(device.name, 'memory:test');
  assert.equal(device.sizeBytes, 1 << 20);
  assert.equal(device.capabilities, inner.capabilities);
  assert.equal(device.inner, inner);
  await device.write(Buffer.alloc(4096, 0x5a), 8192);
  const target = Buffer.alloc(4096);
  await device.read(target, 8192);
  assert.ok(target.equals(Buffer.alloc(4096, 0x5a)));
  await device.flush();
  await device.trim(8192, 4096);
  await device.writeZeroes(0, 4096, { noHole: true });
  assert.equal(device.cache === undefined, inner.cache === undefined);
  assert.equal(device.blockStatus === undefined, inner.blockStatus === undefined);
  if (device.blockStatus) {
    assert.deepEqual(await device.blockStatus(0, 1 << 20), await inner.blockStatus!(0, 1 << 20));
  }
  assert.deepEqual(recorder.ops().slice(0, 5), [DeviceOp.write, DeviceOp.read, DeviceOp.flush, DeviceOp.trim, DeviceOp.zero]);
  for (const [, seconds] of recorder.seen) assert.ok(seconds >= 0 && seconds < 1, `latency ${seconds}`);
  assert.equal(device.readNow, undefined, 'no readNow when the inner device has none');
  assert.equal(device.writeNow, undefined, 'no writeNow when the inner device has none');
  await device.close();
  await assert.rejects(device.read(target, 0), { code: 'ESHUTDOWN' });
});

/** A device with every optional operation, scripted per call. */
class ScriptedDevice implements BlockDevice {
  readonly name = 'scripted';
  readonly sizeBytes = 1 << 20;
  readonly capabilities: DeviceCapabilities = { trim: false, fastZero: false, multiConn: true };
  readonly calls: string[] = [];
  nowResult = true;
  fail: Error | undefined;
  readonly extents: Extent[] = [{ lengthBytes: 1 << 20, flags: 3 }];

  private settle(call: string): Promise<void> {
    this.calls.push(call);
    return this.fail ? Promise.reject(this.fail) : Promise.resolve();
  }
  read(target: Buffer, offsetBytes: number): Promise<void> {
    target.fill(7);
    return this.settle(`read ${offsetBytes} ${target.length}`);
  }
  readNow(target: Buffer, offsetBytes: number): boolean {
    this.calls.push(`readNow ${offsetBytes} ${target.length}`);
    if (this.fail) throw this.fail;
    if (this.nowResult) target.fill(9);
    return this.nowResult;
  }
  writeNow(source: Buffer, offsetBytes: number, flags?: WriteFlags): boolean {
    this.calls.push(`writeNow ${offsetBytes} ${source.length} ${flags?.fua ?? '-'}`);
    if (this.fail) throw this.fail;
    return this.nowResult;
  }
  write(source: Buffer, offsetBytes: number, flags?: WriteFlags): Promise<void> {
    return this.settle(`write ${offsetBytes} ${source.length} ${flags?.fua ?? '-'}`);
  }
  flush(): Promise<void> {
    return this.settle('flush');
  }
  trim(offsetBytes: number, lengthBytes: number): Promise<void> {
    return this.settle(`trim ${offsetBytes} ${lengthBytes}`);
  }
  writeZeroes(offsetBytes: number, lengthBytes: number): Promise<void> {
    return this.settle(`zero ${offsetBytes} ${lengthBytes}`);
  }
  cache(offsetBytes: number, lengthBytes: number): Promise<void> {
    return this.settle(`cache ${offsetBytes} ${lengthBytes}`);
  }
  async blockStatus(offsetBytes: number, lengthBytes: number): Promise<Extent[]> {
    await this.settle(`blockStatus ${offsetBytes} ${lengthBytes}`);
    return this.extents;
  }
  close(): Promise<void> {
    this.calls.push('close');
    return Promise.resolve();
  }
}

test('the caller gets the inner promise itself, observed before the caller resumes', async () => {
  const inner = new ScriptedDevice();
  const recorder = new Recorder();
  const device = new TimedDevice(inner, recorder);
  let innerPromise: Promise<void> | undefined;
  const read = inner.read.bind(inner);
  inner.read = (target, offsetBytes) => (innerPromise = read(target, offsetBytes));
  const promise = device.read(Buffer.alloc(512), 0);
  assert.equal(promise, innerPromise);
  assert.equal(recorder.seen.length, 0, 'recorded on completion, not at the start');
  await promise;
  assert.deepEqual(recorder.ops(), [DeviceOp.read]);
  assert.deepEqual(Object.entries(DeviceOp).map(([name, index]) => [name, DEVICE_OPERATIONS[index]]), Object.keys(DeviceOp).map((name) => [name, name]));
});

test('optional operations pass through, readNow/writeNow recorded only when done', async () => {
  const inner = new ScriptedDevice();
  const recorder = new Recorder();
  const device = new TimedDevice(inner, recorder);
  assert.ok(device.readNow && device.writeNow && device.cache && device.blockStatus);
  const buffer = Buffer.alloc(512);
  assert.equal(device.readNow(buffer, 4096), true);
  assert.equal(buffer[0], 9);
  assert.equal(device.writeNow(buffer, 0, { fua: true }), true);
  inner.nowResult = false;
  assert.equal(device.readNow(buffer, 0), false);
  assert.equal(device.writeNow(buffer, 0), false);
  await device.cache(0, 4096);
  assert.equal(await device.blockStatus(0, 8192), inner.extents);
  assert.deepEqual(recorder.ops(), [DeviceOp.read, DeviceOp.write, DeviceOp.cache, DeviceOp.block_status]);
  assert.deepEqual(inner.calls, ['readNow 4096 512', 'writeNow 0 512 true', 'readNow 0 512', 'writeNow 0 512 -', 'cache 0 4096', 'blockStatus 0 8192']);
});

test('errors pass through unchanged and are still recorded', async () => {
  const inner = new ScriptedDevice();
  const recorder = new Recorder();
  const device = new TimedDevice(inner, recorder);
  const error = new BlockcacheError('EIO', 'scripted failure');
  inner.fail = error;
  const buffer = Buffer.alloc(512);
  const rejects = async (promise: Promise<unknown>) => assert.equal(await promise.then(() => undefined, (e: unknown) => e), error);
  await rejects(device.read(buffer, 0));
  await rejects(device.write(buffer, 0, { fua: true }));
  await rejects(device.flush());
  await rejects(device.trim(0, 512));
  await rejects(device.writeZeroes(0, 512));
  await rejects(device.cache!(0, 512));
  await rejects(device.blockStatus!(0, 512));
  assert.deepEqual(recorder.ops(), [DeviceOp.read, DeviceOp.write, DeviceOp.flush, DeviceOp.trim, DeviceOp.zero, DeviceOp.cache, DeviceOp.block_status]);
  // A synchronous throw passes through as it is (and, like one from read(), is not recorded).
  assert.throws(() => device.readNow!(buffer, 0), (e) => e === error);
  assert.throws(() => device.writeNow!(buffer, 0), (e) => e === error);
  assert.equal(recorder.seen.length, 7);
  await device.close();
  assert.equal(inner.calls.at(-1), 'close');
});
