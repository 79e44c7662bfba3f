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

test('free lists built at open hand out the lowest free slots first, like pushes from the highest', () => {
  const mapping = new SetMapping(16, 4);
  const built = new SlotTable(mapping, 1000);
  const pushed = new SlotTable(mapping, 1000);
  for (const table of [built, pushed]) for (const slot of [1, 6, 7, 12]) table.state[slot] = VALID;
  built.buildFreeLists();
  for (let slot = 15; slot >= 0; slot--) if (!pushed.has(slot, VALID)) pushed.pushFree(slot);
  for (let set = 0; set < 4; set++) {
    assert.equal(built.freeSlots(set), pushed.freeSlots(set));
    for (;;) {
      const slot = built.popFree(set);
      assert.equal(slot, pushed.popFree(set));
      if (slot < 0) break;
    }
  }
  assert.deepEqual([...built.state], [...pushed.state]);
  const busy = new SlotTable(mapping, 1000);
  busy.state[3] = DIRTY_ON_DISK;
  assert.throws(() => busy.buildFreeLists(), /neither valid nor empty/);
});

test('the pending list grows as needed and never past the cache', () => {
  const table = new SlotTable(new SetMapping(4096, 512), 1 << 20);
  for (let slot = 0; slot < 4096; slot++) table.markPending(slot);
  assert.equal(table.pendingRecords, 4096);
  let drained = 0;
  table.drainPending((slot) => assert.equal(slot, drained++));
  assert.equal(drained, 4096);
});
