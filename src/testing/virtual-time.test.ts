// Virtual time: timers fire in due order as the simulation advances the clock,
// time jumps to the next timer only on a turn of the event loop that saw no
// activity, and a dropped scope's timers never fire.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VirtualTime } from './virtual-time.js';
import { every, sleepOn } from '../stdx/timebase.js';

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

test('advance fires due timers in due order, as microtasks, and not the later ones', async () => {
  const time = new VirtualTime(() => 1); // activity never moves: but no turn of the loop is taken here
  const scope = time.scope();
  const fired: string[] = [];
  scope.after(30, () => fired.push('30'));
  scope.after(10, () => fired.push('10'));
  scope.after(10, () => fired.push('10b'));
  scope.after(50, () => fired.push('50'));
  time.advance(35);
  assert.deepEqual(fired, [], 'timers run as microtasks, not inside advance');
  await Promise.resolve();
  assert.deepEqual(fired, ['10', '10b', '30']);
  assert.equal(time.now(), 35);
  assert.equal(time.pendingTimers, 1);
});

test('time jumps to the next timer only when a turn of the event loop saw no activity', async () => {
  let activity = 0;
  const time = new VirtualTime(() => activity);
  const scope = time.scope();
  let woke = false;
  void sleepOn(scope, 1000).then(() => { woke = true; });
  for (let i = 0; i < 5; i++) {
    activity++;
    await turn();
  }
  assert.equal(woke, false, 'requests kept flowing: no jump');
  assert.equal(time.now(), 0);
  await turn();
  await turn();
  assert.equal(woke, true, 'an idle turn jumps to the timer');
  assert.equal(time.now(), 1000);
});

test('a dropped scope never fires, and every() repeats until cancelled', async () => {
  const time = new VirtualTime();
  const dead = time.scope();
  const live = time.scope();
  let deadFired = 0;
  let ticks = 0;
  dead.after(5, () => deadFired++);
  const cancel = every(live, 10, () => ticks++);
  dead.drop();
  dead.after(1, () => deadFired++);
  for (let step = 0; step < 4; step++) {
    time.advance(10);
    await Promise.resolve();
  }
  assert.equal(deadFired, 0);
  assert.equal(ticks, 4);
  time.advance(100);
  await Promise.resolve();
  assert.equal(ticks, 5, 'a periodic timer late by several periods fires once, as setInterval does');
  cancel();
  time.advance(100);
  await Promise.resolve();
  assert.equal(ticks, 5);
  assert.equal(time.pendingTimers, 0);
});
