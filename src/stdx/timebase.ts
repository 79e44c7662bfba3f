// Where the engine's background work gets its time: a monotonic clock and
// one-shot timers on that clock. Production runs on real time; the crash
// simulator runs on virtual time (src/testing/virtual-time.ts), so paced and
// rate-limited writeback, the age scan, the periodic commit and the RAM tier's
// writer wait between steps as they do under load, and a seed still replays
// exactly. Timers never keep the process alive.

/** Milliseconds on a monotonic clock. */
export type Clock = () => number;

/** Cancels a timer; calling it after the timer fired does nothing. */
export type Cancel = () => void;

export interface Timebase {
  readonly now: Clock;
  /** Calls `fn` once, `ms` from now on this timebase's clock. */
  after(ms: number, fn: () => void): Cancel;
}

function realAfter(ms: number, fn: () => void): Cancel {
  const timer = setTimeout(fn, Math.max(0, ms));
  timer.unref();
  return () => clearTimeout(timer);
}

export const REAL_TIME: Timebase = { now: performance.now.bind(performance), after: realAfter };

/** A given clock (tests: a frozen or hand-moved one) with real timers. */
export function clockWithRealTimers(now: Clock): Timebase {
  return { now, after: realAfter };
}

/** Calls `fn` every `ms` on `time` until cancelled. */
export function every(time: Timebase, ms: number, fn: () => void): Cancel {
  let cancel: Cancel;
  let stopped = false;
  const tick = () => {
    if (stopped) return;
    cancel = time.after(ms, tick);
    fn();
  };
  cancel = time.after(ms, tick);
  return () => {
    stopped = true;
    cancel();
  };
}

/** Resolves `ms` from now on `time`. */
export function sleepOn(time: Timebase, ms: number): Promise<void> {
  return new Promise((resolve) => time.after(ms, resolve));
}
