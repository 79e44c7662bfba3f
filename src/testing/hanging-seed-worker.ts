// A worker for timed-seed-runner.test.ts (testing only): seeds that finish, and
// seeds that hang in each way a run can, after logging an operation that never
// ends. By the last digit of the seed:
//   0  finishes at once, no violations
//   1  awaits a promise that never settles (the event loop goes idle)
//   2  awaits microtasks forever (the event loop never turns again)
//   3  loops synchronously forever
//   4  keeps the event loop turning on virtual time: a timer that re-arms
//      itself, fired by VirtualTime's idle jumps, one setImmediate after another
//   5  throws outside any promise the run awaits (the worker dies)
import { serveSeeds } from './timed-seed-runner.js';
import { VirtualTime } from './virtual-time.js';
import type { OperationLog } from './operation-log.js';

const NORMAL = 0;
const NEVER_SETTLES = 1;
const MICROTASKS_FOREVER = 2;
const SYNCHRONOUS_LOOP = 3;
const VIRTUAL_TIME_FOREVER = 4;
const THROWS = 5;

async function run(seed: number, mode: string, log: OperationLog) {
  const result = { seed, config: `hang=${seed % 10} mode=${mode}`, violations: [], zeroCopyReads: 0, moves: 0 };
  log.end(log.begin('test: an operation that ended'));
  const hang = seed % 10;
  if (hang === NORMAL) return result;
  log.begin(`test: the operation that hangs (${hang})`);
  if (hang === NEVER_SETTLES) await new Promise(() => {});
  if (hang === MICROTASKS_FOREVER) for (;;) await Promise.resolve();
  if (hang === SYNCHRONOUS_LOOP) for (;;);
  if (hang === VIRTUAL_TIME_FOREVER) {
    const timers = new VirtualTime().scope();
    const again = (): void => void timers.after(1, again);
    again();
    await new Promise(() => {});
  }
  if (hang === THROWS) setImmediate(() => { throw new Error('thrown outside the run'); });
  await new Promise(() => {});
  return result;
}

serveSeeds(run, (seed, mode) => `hang=${seed % 10} mode=${mode}`);
