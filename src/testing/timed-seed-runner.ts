// Runs seeds one at a time in a worker thread, each with a wall-clock time limit
// (testing only): a seed that hangs is reported as a failure with the last
// operations it began, and the next seed runs in a fresh worker.
//
// Why a worker and not a timer next to the run: a hung seed may keep its thread
// busy, and then no timer of that thread fires. A promise that never settles
// leaves the event loop idle (a timer would fire), and a run on virtual time
// turns the loop with setImmediate (timers still get their phase), but a chain
// of microtasks that never ends, or a synchronous loop, never lets the event
// loop turn again. The parent thread only waits, so its real timer always
// fires, and Worker.terminate stops even a thread that never yields. The
// worker's last operations are in shared memory (operation-log.ts), read after
// it is stopped. Virtual time never enters here: the limit is on real time.
//
// The worker module calls serveSeeds with its run function; the parent makes a
// TimedSeedRunner with that module's URL.
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { assert } from '../stdx/assert.js';
import { OperationLog } from './operation-log.js';

/**
 * Wall-clock limit of one seed. A coherence-fuzz seed takes about 0.3 s (seeds 101–500 in
 * writeback: 126 s; 1001–1200 in writethrough: 89 s) and the slowest of those 600 took 1.8 s:
 * 60 s leaves room for a loaded machine, and a seed over it is stuck, not slow.
 */
export const SEED_TIMEOUT_MS = 60_000;
/** Operations listed for a hung seed (besides any older one still pending). */
export const HUNG_OPERATIONS_SHOWN = 12;

export interface SeedResult {
  readonly seed: number;
  readonly config: string;
  readonly violations: string[];
  readonly zeroCopyReads: number;
  readonly moves: number;
}

export interface SeedOutcome extends SeedResult {
  /** True if the seed did not finish within the limit (its violations say so). */
  readonly hung: boolean;
  readonly elapsedMs: number;
}

export type RunSeed<Mode> = (seed: number, mode: Mode, log: OperationLog) => Promise<SeedResult>;

interface SeedRequest<Mode> { readonly seed: number; readonly mode: Mode }
type SeedMessage = { readonly kind: 'started'; readonly config: string } | { readonly kind: 'done'; readonly result: SeedResult };
type Ending = { readonly kind: 'done'; readonly result: SeedResult } | { readonly kind: 'hung' } | { readonly kind: 'died'; readonly reason: string };

/** Worker side: runs each seed the parent sends, logging its operations into the shared log. */
export function serveSeeds<Mode>(run: RunSeed<Mode>, describe: (seed: number, mode: Mode) => string): void {
  assert(!isMainThread && parentPort !== null, 'serveSeeds runs in a worker thread');
  const port = parentPort;
  const log = new OperationLog(workerData as SharedArrayBuffer);
  port.on('message', (request: SeedRequest<Mode>) => {
    port.postMessage({ kind: 'started', config: describe(request.seed, request.mode) } satisfies SeedMessage);
    void run(request.seed, request.mode, log).then((result) => {
      port.postMessage({ kind: 'done', result } satisfies SeedMessage);
    });
  });
}

/** Parent side: one worker at a time, replaced after a seed hangs or the worker dies. */
export class TimedSeedRunner<Mode> {
  private worker: Worker | null = null;
  private readonly memory = OperationLog.memory();
  private readonly log = new OperationLog(this.memory);

  constructor(private readonly workerUrl: URL, readonly timeoutMs: number = SEED_TIMEOUT_MS) {
    assert(Number.isFinite(timeoutMs) && timeoutMs > 0, 'a seed needs a positive time limit');
  }

  async run(seed: number, mode: Mode): Promise<SeedOutcome> {
    const worker = this.worker ?? (this.worker = new Worker(this.workerUrl, { workerData: this.memory }));
    this.log.reset();
    let config = 'config not reported';
    const startedMs = performance.now();
    const ending = await new Promise<Ending>((resolve) => {
      const finish = (value: Ending): void => {
        clearTimeout(timer);
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
        resolve(value);
      };
      const onMessage = (message: SeedMessage): void => {
        if (message.kind === 'started') config = message.config;
        else finish(message);
      };
      const onError = (error: Error): void => finish({ kind: 'died', reason: error.stack ?? String(error) });
      const onExit = (code: number): void => finish({ kind: 'died', reason: `the worker exited with code ${code}` });
      const timer = setTimeout(() => finish({ kind: 'hung' }), this.timeoutMs);
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.on('exit', onExit);
      worker.postMessage({ seed, mode } satisfies SeedRequest<Mode>);
    });
    const elapsedMs = performance.now() - startedMs;
    if (ending.kind === 'done') return { ...ending.result, hung: false, elapsedMs };
    await this.stop(); // before reading the log: a stopped thread writes no more
    const operations = this.log.recent(HUNG_OPERATIONS_SHOWN).map((line) => `  ${line}`);
    const headline = ending.kind === 'hung'
      ? `seed ${seed} hung after ${(elapsedMs / 1000).toFixed(1)} s; last operations:`
      : `seed ${seed}: the worker died after ${(elapsedMs / 1000).toFixed(1)} s: ${ending.reason}; last operations:`;
    return { seed, config, violations: [[headline, ...operations].join('\n')], zeroCopyReads: 0, moves: 0, hung: ending.kind === 'hung', elapsedMs };
  }

  /** Stops the worker (the runner starts a new one for the next seed). */
  async stop(): Promise<void> {
    const worker = this.worker;
    this.worker = null;
    if (worker !== null) await worker.terminate();
  }
}
