// RamWriter's pacing: pages over the background mark wait while clients are
// active and go down once they pause; expired pages go down even under load,
// RAM_PUSH_BUSY_INFLIGHT at a time. A fake clock; pushes finish when the test says.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RAM_CLIENTS_IDLE_MS, RAM_DIRTY_EXPIRE_MS, RAM_PUSH_BUSY_INFLIGHT } from '../constants.js';
import { RamTier } from './ram-tier.js';
import { RamWriter } from './ram-writer.js';
import { clockWithRealTimers } from '../stdx/timebase.js';

const BLOCK = 4096;

function setup(pages: number) {
  const ram = new RamTier(pages, BLOCK, pages);
  const clock = { now: 0 };
  let requests = 0;
  const inFlight = new Map<number, () => void>();
  const writer = new RamWriter({
    ram,
    pushRamBlock: (block) => new Promise<void>((resolve) => {
      inFlight.set(block, () => {
        inFlight.delete(block);
        ram.markClean(ram.lookup(block));
        resolve();
      });
    }),
    clientRequests: () => requests,
    log: () => {},
  }, clockWithRealTimers(() => clock.now));
  /** A client write: one more request, the block's page dirty. */
  const write = (block: number) => {
    requests++;
    const page = ram.lookup(block) >= 0 ? ram.lookup(block) : ram.allocate(block);
    ram.copyIn(page, 0, Buffer.alloc(BLOCK, block), 0, BLOCK);
    ram.markDirty(page, clock.now);
    writer.noteDirty();
  };
  const finishAll = async () => {
    for (const finish of [...inFlight.values()]) finish();
    await new Promise((resolve) => setImmediate(resolve));
  };
  return { ram, clock, writer, write, inFlight, finishAll, touch: () => { requests++; } };
}

test('RamWriter: pages over the background mark wait while clients are active, and go down when they pause', async () => {
  const { ram, clock, writer, write, inFlight, finishAll } = setup(8);
  for (let block = 0; block < 6; block++) write(block); // 6 of 8 pages dirty: over the 25% mark
  assert.equal(inFlight.size, 0, 'no push while clients are active');
  clock.now += RAM_CLIENTS_IDLE_MS; // no request since
  writer.noteDirty();
  assert.ok(inFlight.size >= 4, `pushes start once clients pause (${inFlight.size} in flight)`);
  await finishAll();
  assert.ok(ram.dirtyCount <= 2, `down to the background mark (${ram.dirtyCount} dirty)`);
  await finishAll();
  await writer.stop();
});

test('RamWriter: expired pages go down under load, a few at a time', async () => {
  const { ram, clock, writer, write, inFlight, touch, finishAll } = setup(8);
  for (let block = 0; block < 6; block++) write(block);
  clock.now += RAM_DIRTY_EXPIRE_MS;
  touch(); // clients still busy
  writer.noteDirty();
  assert.equal(inFlight.size, RAM_PUSH_BUSY_INFLIGHT, 'expired pages are pushed even under load, RAM_PUSH_BUSY_INFLIGHT at once');
  const [first] = inFlight.keys();
  touch();
  inFlight.get(first!)!();
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(inFlight.size, RAM_PUSH_BUSY_INFLIGHT, 'the next expired page follows');
  while (inFlight.size > 0) await finishAll();
  assert.equal(ram.dirtyCount, 0, 'every expired page went down');
  await writer.stop();
});

test('RamWriter: below the background mark and young, pages stay in RAM; pushAll takes them all', async () => {
  const { ram, writer, write, inFlight, finishAll } = setup(16);
  for (let block = 0; block < 3; block++) write(block); // 3 of 16: under the 25% mark
  assert.equal(inFlight.size, 0);
  const all = writer.pushAll();
  await new Promise((resolve) => setImmediate(resolve));
  while (inFlight.size > 0) await finishAll();
  await all;
  assert.equal(ram.dirtyCount, 0);
  await writer.stop();
});
