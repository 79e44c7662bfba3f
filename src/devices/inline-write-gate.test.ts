// The inline-write gate: which writes may run on the calling thread, and how a
// device that stalls sends them back to the thread pool for a while.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  InlineWriteGate, INLINE_BACKOFF_MS_MAX, INLINE_BACKOFF_MS_MIN, INLINE_STALL_BUDGET_MS_MAX,
  INLINE_STALL_BUDGET_MS_PER_SECOND, INLINE_WRITE_BYTES_MAX, INLINE_WRITE_SLOW_MS,
} from './inline-write-gate.js';

test('small writes run inline; large ones never do', () => {
  const gate = new InlineWriteGate();
  assert.equal(gate.allows(4096, 0), true);
  assert.equal(gate.allows(INLINE_WRITE_BYTES_MAX, 0), true);
  assert.equal(gate.allows(INLINE_WRITE_BYTES_MAX + 1, 0), false);
  assert.equal(gate.deferredWrites, 0, 'a large write is not a deferral');
});

test('fast writes never turn inline writes off', () => {
  const gate = new InlineWriteGate();
  for (let t = 0; t < 100_000; t += 10) {
    assert.equal(gate.allows(4096, t), true);
    gate.observe(t, t + INLINE_WRITE_SLOW_MS);
  }
  assert.equal(gate.slowWrites, 0);
  assert.equal(gate.inlineWrites, 10_000);
});

test('occasional slow writes within the stall budget keep writes inline', () => {
  const gate = new InlineWriteGate();
  // 3 ms every second: 0.3% of the time, under the 2% budget.
  for (let t = 0; t < 60_000; t += 1000) {
    assert.equal(gate.allows(4096, t), true, `at ${t} ms`);
    gate.observe(t, t + 3);
  }
  assert.equal(gate.slowWrites, 60);
  assert.equal(gate.deferredWrites, 0);
});

test('a stall that overdraws the budget defers writes for a backoff, then they run inline again', () => {
  const gate = new InlineWriteGate();
  gate.observe(0, INLINE_STALL_BUDGET_MS_MAX + 1); // one long pause (a throttled writer)
  assert.equal(gate.allows(4096, 100), false);
  assert.equal(gate.allows(4096, INLINE_STALL_BUDGET_MS_MAX + INLINE_BACKOFF_MS_MIN - 1), false);
  assert.equal(gate.deferredWrites, 2);
  assert.equal(gate.allows(4096, INLINE_STALL_BUDGET_MS_MAX + 1 + INLINE_BACKOFF_MS_MIN), true);
});

test('repeated stalls double the backoff up to its maximum; a quiet spell halves it', () => {
  const gate = new InlineWriteGate();
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
  const gate = new InlineWriteGate();
  const stall = 10;
  const spacing = (stall * 1000) / INLINE_STALL_BUDGET_MS_PER_SECOND; // refills exactly one stall
  for (let i = 0, t = 0; i < 100; i++, t += spacing) gate.observe(t, t + stall);
  assert.equal(gate.allows(4096, 100 * spacing), true);
  // Twice as often: the budget runs out.
  const busy = new InlineWriteGate();
  let deferred = false;
  for (let i = 0, t = 0; i < 100 && !deferred; i++, t += spacing / 2) {
    if (!busy.allows(4096, t)) deferred = true;
    else busy.observe(t, t + stall);
  }
  assert.equal(deferred, true);
});
