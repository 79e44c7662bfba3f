import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SetMapping } from './set-mapping.js';
import { DIRTY, DIRTY_ON_DISK, FREE, SlotTable, VALID } from './slot-table.js';

test('free lists are per set, and a slot cannot be freed twice or while in use', () => {
  const table = new SlotTable(new SetMapping(16, 4), 1000);
  for (let slot = 0; slot < 16; slot++) table.pushFree(slot);
  assert.equal(table.freeSlots(2), 4);
  const slot = table.popFree(2);
  assert.ok(slot >= 8 && slot < 12);
  assert.ok(!table.has(slot, FREE));
  table.state[slot] = VALID;
  assert.throws(() => table.pushFree(slot), /freeing busy or free slot/);
  table.state[slot] = 0;
  table.pushFree(slot);
  assert.throws(() => table.pushFree(slot), /freeing busy or free slot/);
  for (let i = 0; i < 4; i++) table.popFree(3);
  assert.equal(table.popFree(3), -1);
});

test('dirty counts follow transitions; slots with a dirty record on disk are freed only after the commit', () => {
  const table = new SlotTable(new SetMapping(8, 4), 1000);
  table.state[5] = VALID;
  table.setDirty(5, true);
  table.setDirty(5, true);
  assert.equal(table.dirtyCount, 1);
  assert.equal(table.dirtyPerSet[1], 1);
  table.setDirty(5, false);
  assert.equal(table.dirtyCount, 0);
  table.state[5] = DIRTY_ON_DISK;
  table.deferFree(5);
  table.releaseDeferred();
  assert.equal(table.freeSlots(1), 0, 'still dirty on disk: not free');
  table.state[5] &= ~DIRTY_ON_DISK;
  table.releaseDeferred();
  assert.equal(table.freeSlots(1), 1);
  assert.ok(!table.has(5, DIRTY));
});

test('pending records are listed once and drained in order', () => {
  const table = new SlotTable(new SetMapping(8, 8), 1000);
  table.markPending(3);
  table.markPending(1);
  table.markPending(3);
  const drained: number[] = [];
  table.drainPending((slot) => drained.push(slot));
  assert.deepEqual(drained, [3, 1]);
  assert.equal(table.pendingRecords, 0);
});
