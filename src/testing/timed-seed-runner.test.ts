// The timed seed runner reports a seed that hangs, in every way a run can
// hang, as a failure naming its pending operation, and runs the next seed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TimedSeedRunner } from './timed-seed-runner.js';

/** Well above the fixture's start-up and its normal seeds (a few milliseconds), short enough for a unit test. */
const TIMEOUT_MS = 600;
/** libuv's timers count from the loop's cached millisecond clock, so one may fire up to a millisecond early by performance.now (seen: 599.8 ms). */
const TIMER_EARLY_MS = 5;

test('a hung seed is reported with its last operations, and the next seed runs', async () => {
  const runner = new TimedSeedRunner<string>(new URL('./hanging-seed-worker.js', import.meta.url), TIMEOUT_MS);
  try {
    const first = await runner.run(10, 'writeback');
    assert.equal(first.hung, false);
    assert.deepEqual(first.violations, []);
    for (const [seed, way] of [[11, 'a promise that never settles'], [12, 'endless microtasks'], [13, 'a synchronous loop'], [14, 'virtual time turning the event loop']] as const) {
      const hung = await runner.run(seed, 'writeback');
      assert.equal(hung.hung, true, way);
      assert.equal(hung.config, `hang=${seed % 10} mode=writeback`, way);
      assert.equal(hung.violations.length, 1, way);
      const lines = hung.violations[0]!.split('\n');
      assert.match(lines[0]!, new RegExp(`^seed ${seed} hung after \\d+\\.\\d s; last operations:$`), way);
      assert.ok(hung.elapsedMs >= TIMEOUT_MS - TIMER_EARLY_MS, `${way}: ${hung.elapsedMs} ms`);
      assert.match(lines.at(-2)!, /^ {2}#1 test: an operation that ended$/, way);
      assert.match(lines.at(-1)!, new RegExp(`^ {2}#2 test: the operation that hangs \\(${seed % 10}\\) \\(pending\\)$`), way);
      const next = await runner.run(20, 'writeback');
      assert.equal(next.hung, false, `the seed after ${way} runs`);
      assert.deepEqual(next.violations, []);
    }
    const died = await runner.run(15, 'writeback');
    assert.equal(died.hung, false);
    assert.match(died.violations[0]!, /^seed 15: the worker died after .*thrown outside the run/s);
    assert.match(died.violations[0]!, /the operation that hangs \(5\) \(pending\)$/);
    assert.deepEqual((await runner.run(30, 'writeback')).violations, [], 'the seed after a dead worker runs');
  } finally {
    await runner.stop();
  }
});
