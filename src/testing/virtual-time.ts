// Virtual time for the crash simulator and the coherence fuzzer (testing only):
// a clock that moves only when the simulation says so, and timers on it.
//
// Time moves in two ways. The simulation advances it as it issues requests
// (advance), so a paced or rate-limited writeback round, the periodic commit
// and the RAM tier's writer wake up between client requests, as they do under
// load. And when nothing is left to run but timers, time jumps to the next
// timer, as real time would pass while the process sleeps: when a turn of the
// event loop (every promise chain blocked, or waiting for a setImmediate) saw
// no activity (the `activity` count the simulation gives did not move since
// the previous turn). A turn with activity does not count: the cleaner yields
// to clients with setImmediate, and time must not jump past its paced waits
// while requests still flow. Both depend only on the order of events, never
// on real time, so a seed replays exactly.
//
// Timers fire as microtasks, never inside the caller's stack. A `Scope`
// groups an engine's timers so a simulated crash can drop them all at once:
// a dead process's timers never fire.
import { assert } from '../stdx/assert.js';
import type { Cancel, Timebase } from '../stdx/timebase.js';

interface Timer {
  readonly dueMs: number;
  readonly order: number;
  readonly fn: () => void;
  cancelled: boolean;
}

export class VirtualTime {
  private nowMs = 0;
  private order = 0;
  /** Pending timers, sorted by due time, then by arming order. */
  private timers: Timer[] = [];
  private idleCheck: NodeJS.Immediate | undefined;
  private activitySeen = Number.NaN;

  /** `activity`: a count that moves whenever the simulation makes progress (requests issued and completed). */
  constructor(private readonly activity: () => number = () => 0) {}

  readonly now = (): number => this.nowMs;

  /** A timebase whose timers can all be dropped at once (one engine's life). */
  scope(): Scope {
    return new Scope(this);
  }

  /** Moves time forward by `ms`, firing the timers that fall due on the way. */
  advance(ms: number): void {
    assert(ms >= 0, 'virtual time never goes back');
    this.fireUntil(this.nowMs + ms);
  }

  get pendingTimers(): number {
    return this.timers.length;
  }

  /** @internal Arms a timer (through a Scope). */
  arm(ms: number, fn: () => void): Timer {
    const timer: Timer = { dueMs: this.nowMs + Math.max(0, ms), order: this.order++, fn, cancelled: false };
    let at = this.timers.length;
    while (at > 0 && this.timers[at - 1]!.dueMs > timer.dueMs) at--;
    this.timers.splice(at, 0, timer);
    this.watchIdle();
    return timer;
  }

  /** @internal */
  disarm(timer: Timer): void {
    if (timer.cancelled) return;
    timer.cancelled = true;
    const at = this.timers.indexOf(timer);
    if (at >= 0) this.timers.splice(at, 1);
  }

  private fireUntil(targetMs: number): void {
    while (this.timers.length > 0 && this.timers[0]!.dueMs <= targetMs) {
      const timer = this.timers.shift()!;
      this.nowMs = Math.max(this.nowMs, timer.dueMs);
      timer.cancelled = true;
      queueMicrotask(timer.fn);
    }
    this.nowMs = Math.max(this.nowMs, targetMs);
  }

  /** While timers are pending, each turn of the event loop (everything else blocked) jumps to the next one. */
  private watchIdle(): void {
    if (this.idleCheck !== undefined) return;
    this.idleCheck = setImmediate(() => {
      this.idleCheck = undefined;
      if (this.timers.length === 0) return;
      const activity = this.activity();
      if (activity === this.activitySeen) this.fireUntil(this.timers[0]!.dueMs);
      this.activitySeen = activity;
      if (this.timers.length > 0) this.watchIdle();
    });
    // Never keeps the process alive: a simulation that is done leaves its dropped engines' timers behind.
    this.idleCheck.unref();
  }
}

export class Scope implements Timebase {
  private readonly armed = new Set<Timer>();
  private dropped = false;
  readonly now: () => number;

  constructor(private readonly time: VirtualTime) {
    this.now = time.now;
  }

  after(ms: number, fn: () => void): Cancel {
    if (this.dropped) return () => {};
    const timer = this.time.arm(ms, () => {
      this.armed.delete(timer);
      if (!this.dropped) fn();
    });
    this.armed.add(timer);
    return () => {
      this.armed.delete(timer);
      this.time.disarm(timer);
    };
  }

  /** Drops every timer of this scope, now and later (the process died). */
  drop(): void {
    this.dropped = true;
    for (const timer of this.armed) this.time.disarm(timer);
    this.armed.clear();
  }
}
