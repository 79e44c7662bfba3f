// The crash device keeps exactly what a disk with a volatile write cache may
// keep: flushed and FUA writes always, unflushed ones sector by sector, and
// nothing at all from a dead device.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CrashDevice } from './crash-device.js';
import { Prng } from './prng.js';

const SECTOR = 512;

function pattern(sectors: number, value: number): Buffer {
  return Buffer.alloc(sectors * SECTOR, value);
}

async function read(device: CrashDevice, offset: number, length: number): Promise<Buffer> {
  const target = Buffer.alloc(length);
  await device.read(target, offset);
  return target;
}

test('crash-device: reads see completed writes before any flush', async () => {
  const device = new CrashDevice(8 * SECTOR);
  await device.write(pattern(2, 7), SECTOR);
  assert.ok((await read(device, SECTOR, 2 * SECTOR)).equals(pattern(2, 7)));
  assert.equal(device.pendingSectors, 2);
});

test('crash-device: flushed writes survive every crash style', async () => {
  for (const style of ['drop-all', 'keep-all', 'random'] as const) {
    const device = new CrashDevice(8 * SECTOR);
    await device.write(pattern(4, 9), 0);
    await device.flush();
    assert.equal(device.pendingSectors, 0);
    const after = device.crash(new Prng(3), style);
    assert.ok((await read(after, 0, 4 * SECTOR)).equals(pattern(4, 9)), style);
  }
});

test('crash-device: FUA writes are durable on completion', async () => {
  const device = new CrashDevice(8 * SECTOR);
  await device.write(pattern(1, 5), 0, { fua: true });
  const after = device.crash(new Prng(1), 'drop-all');
  assert.ok((await read(after, 0, SECTOR)).equals(pattern(1, 5)));
});

test('crash-device: unflushed writes are dropped or kept as the style says', async () => {
  const device = new CrashDevice(8 * SECTOR);
  await device.write(pattern(2, 1), 0);
  await device.flush();
  await device.write(pattern(2, 2), 0);
  const dropped = device.crash(new Prng(1), 'drop-all');
  assert.ok((await read(dropped, 0, 2 * SECTOR)).equals(pattern(2, 1)));
  await dropped.write(pattern(2, 3), 0);
  const kept = dropped.crash(new Prng(1), 'keep-all');
  assert.ok((await read(kept, 0, 2 * SECTOR)).equals(pattern(2, 3)));
});

test('crash-device: random crashes tear multi-sector writes sector by sector, never inside a sector', async () => {
  const outcomes = new Set<string>();
  for (let seed = 0; seed < 64; seed++) {
    const device = new CrashDevice(8 * SECTOR);
    await device.write(pattern(4, 1), 0);
    await device.flush();
    await device.write(pattern(4, 2), 0);
    await device.write(pattern(4, 3), 0);
    const after = device.crash(new Prng(seed), 'random');
    const image = await read(after, 0, 4 * SECTOR);
    let shape = '';
    for (let sector = 0; sector < 4; sector++) {
      const bytes = image.subarray(sector * SECTOR, (sector + 1) * SECTOR);
      assert.ok(bytes.every((value) => value === bytes[0]), 'a sector is never mixed');
      assert.ok([1, 2, 3].includes(bytes[0]!), 'only versions that were written');
      shape += bytes[0];
    }
    outcomes.add(shape);
  }
  assert.ok(outcomes.size > 8, `expected many torn outcomes, saw ${[...outcomes].join(' ')}`);
  assert.ok([...outcomes].some((shape) => shape.includes('2') && shape.includes('3')), 'an older write may land without a newer one');
});

test('crash-device: a sub-sector write rewrites its whole sector atomically', async () => {
  const device = new CrashDevice(4 * SECTOR);
  await device.write(pattern(2, 1), 0);
  await device.flush();
  await device.write(Buffer.alloc(10, 9), SECTOR - 5); // straddles sectors 0 and 1
  const after = device.crash(new Prng(5), 'keep-all');
  const image = await read(after, 0, 2 * SECTOR);
  assert.equal(image[SECTOR - 6], 1);
  assert.equal(image[SECTOR - 5], 9);
  assert.equal(image[SECTOR + 4], 9);
  assert.equal(image[SECTOR + 5], 1);
});

test('crash-device: a flush covers only writes completed before it was issued', async () => {
  const device = new CrashDevice(8 * SECTOR, { prng: new Prng(2), latencyTurnsMax: 20 });
  const write = device.write(pattern(1, 4), 0);
  const flush = device.flush(); // issued while the write is in flight
  await Promise.all([write, flush]);
  const after = device.crash(new Prng(1), 'drop-all');
  assert.ok((await read(after, 0, SECTOR)).equals(pattern(1, 0)));
});

test('crash-device: a flush supersedes older pending versions of a sector', async () => {
  const device = new CrashDevice(4 * SECTOR);
  await device.write(pattern(1, 1), 0);
  await device.write(pattern(1, 2), 0);
  await device.flush();
  assert.equal(device.pendingSectors, 0);
  for (let seed = 0; seed < 16; seed++) {
    const copy = new CrashDevice(4 * SECTOR, {}, device.durableImage());
    assert.equal((await read(copy, 0, 1))[0], 2);
  }
});

test('crash-device: a dead device never completes anything', async () => {
  const device = new CrashDevice(4 * SECTOR, { prng: new Prng(1), latencyTurnsMax: 4 });
  const inflight = device.write(pattern(1, 1), 0);
  device.crash(new Prng(1));
  let settled = false;
  for (const operation of [inflight, device.read(Buffer.alloc(SECTOR), 0), device.flush(), device.write(pattern(1, 2), 0)]) {
    void operation.then(() => (settled = true), () => (settled = true));
  }
  for (let turn = 0; turn < 100; turn++) await null;
  assert.equal(settled, false);
  assert.ok(device.isDead);
});

test('crash-device: injected errors are seeded and replay exactly', async () => {
  async function errors(seed: number): Promise<number[]> {
    const device = new CrashDevice(64 * SECTOR, { prng: new Prng(seed), readErrorProbability: 0.2, writeErrorProbability: 0.2 });
    const failed: number[] = [];
    for (let i = 0; i < 64; i++) {
      try {
        if (i % 2 === 0) await device.write(pattern(1, i), i * SECTOR);
        else await device.read(Buffer.alloc(SECTOR), i * SECTOR);
      } catch (error) {
        assert.equal((error as { code?: string }).code, 'EIO');
        failed.push(i);
      }
    }
    return failed;
  }
  const first = await errors(11);
  assert.ok(first.length > 0);
  assert.deepEqual(await errors(11), first);
});
