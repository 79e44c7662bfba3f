// The inline-I/O gate: which reads or writes may run on the calling thread, and
// how a device that stalls sends them back to the thread pool for a while.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  InlineIoGate, INLINE_BACKOFF_MS_MAX, INLINE_BACKOFF_MS_MIN, INLINE_STALL_BUDGET_MS_MAX,
  INLINE_STALL_BUDGET_MS_PER_SECOND, INLINE_IO_BYTES_MAX, INLINE_READ_SLOW_MS, INLINE_WRITE_SLOW_MS,
} from './inline-io-gate.js';

test('small writes run inline; large ones never do', () => {
  const gate = new InlineIoGate(INLINE_WRITE_SLOW_MS);
  assert.equal(gate.allows(4096, 0), true);
  assert.equal(gate.allows(INLINE_IO_BYTES_MAX, 0), true);
  assert.equal(gate.allows(INLINE_IO_BYTES_MAX + 1, 0), false);
  assert.equal(gate.deferred, 0, 'a large operation is not a deferral');
  assert.equal(gate.open(0), true);
});

test('fast writes never turn inline writes off', () => {
  const gate = new InlineIoGate(INLINE_WRITE_SLOW_MS);
  for (let t = 0; t < 100_000; t += 10) {
    assert.equal(gate.allows(4096, t), true);
    gate.observe(t, t + INLINE_WRITE_SLOW_MS);
  }
  assert.equal(gate.slow, 0);
  assert.equal(gate.inline, 10_000);
});

test('occasional slow writes within the stall budget keep writes inline', () => {
  const gate = new InlineIoGate(INLINE_WRITE_SLOW_MS);
  // 3 ms every second: 0.3% of the time, under the 2% budget.
  for (let t = 0; t < 60_000; t += 1000) {
    assert.equal(gate.allows(4096, t), true, `at ${t} ms`);
    gate.observe(t, t + 3);
  }
  assert.equal(gate.slow, 60);
  assert.equal(gate.deferred, 0);
});

test('a stall that overdraws the budget defers writes for a backoff, then they run inline again', () => {
  const gate = new InlineIoGate(INLINE_WRITE_SLOW_MS);
  gate.observe(0, INLINE_STALL_BUDGET_MS_MAX + 1); // one long pause (a throttled writer)
  assert.equal(gate.allows(4096, 100), false);
  assert.equal(gate.allows(4096, INLINE_STALL_BUDGET_MS_MAX + INLINE_BACKOFF_MS_MIN - 1), false);
  assert.equal(gate.deferred, 2);
  assert.equal(gate.open(100), false);
  assert.equal(gate.allows(4096, INLINE_STALL_BUDGET_MS_MAX + 1 + INLINE_BACKOFF_MS_MIN), true);
});

test('repeated stalls double the backoff up to its maximum; a quiet spell halves it', () => {
  const gate = new InlineIoGate(INLINE_WRITE_SLOW_MS);
  let t = 0;
  const backoffs: number[] = [];
  for (let i = 0; i < 12; i++) {
    gate.observe(t, t + 200); // a 200 ms pause each time inline writes resume
    backoffs.push(gate.currentBackoffMs);
    t += 200 + gate.currentBackoffMs;
    assert.equal(gate.allows(4096, t - 1), false);
    assert.equal(gate.allows(4096, t), true);
  }
  assert.deepEqual(backoffs.slice(0, 4), [INLINE_BACKOFF_MS_MIN, 2 * INLINE_BACKOFF_MS_MIN, 4 * INLINE_BACKOFF_MS_MIN, 8 * INLINE_BACKOFF_MS_MIN]);
  assert.equal(backoffs[backoffs.length - 1], INLINE_BACKOFF_MS_MAX);
  // Fast writes for longer than twice the backoff: it halves.
  t += 2 * INLINE_BACKOFF_MS_MAX + 1;
  gate.observe(t, t);
  assert.equal(gate.currentBackoffMs, INLINE_BACKOFF_MS_MAX / 2);
});

test('the budget refills at its rate: slow writes spread out enough are never deferred', () => {
  const gate = new InlineIoGate(INLINE_WRITE_SLOW_MS);
  const stall = 10;
  const spacing = (stall * 1000) / INLINE_STALL_BUDGET_MS_PER_SECOND; // refills exactly one stall
  for (let i = 0, t = 0; i < 100; i++, t += spacing) gate.observe(t, t + stall);
  assert.equal(gate.allows(4096, 100 * spacing), true);
  // Twice as often: the budget runs out.
  const busy = new InlineIoGate(INLINE_WRITE_SLOW_MS);
  let deferred = false;
  for (let i = 0, t = 0; i < 100 && !deferred; i++, t += spacing / 2) {
    if (!busy.allows(4096, t)) deferred = true;
    else busy.observe(t, t + stall);
  }
  assert.equal(deferred, true);
});

test('a read gate backs off from a device whose reads miss the page cache (100 µs each) within a budget of stalls', () => {
  const gate = new InlineIoGate(INLINE_READ_SLOW_MS);
  let t = 0;
  let inline = 0;
  while (gate.allows(4096, t)) {
    gate.observe(t, t + 0.1);
    t += 0.1;
    inline++;
  }
  // The budget (50 ms) pays for ~500 of them, a little more as it refills meanwhile.
  assert.ok(inline >= INLINE_STALL_BUDGET_MS_MAX / 0.1 && inline <= 1.05 * (INLINE_STALL_BUDGET_MS_MAX / 0.1), `${inline} slow reads inline before backing off`);
  assert.equal(gate.open(t + INLINE_BACKOFF_MS_MIN - 1), false);
  // Page-cache reads (5 µs) are never charged.
  const fast = new InlineIoGate(INLINE_READ_SLOW_MS);
  for (let i = 0; i < 100_000; i++) fast.observe(i * 0.01, i * 0.01 + 0.005);
  assert.equal(fast.slow, 0);
});
