// The RAM tier's writeback thread (the kernel's flusher threads over dirty
// page-cache pages): pushes dirty RAM pages down to the SSD tier, oldest first.
//
// Background pushing starts when dirty pages exceed RAM_BACKGROUND_PERCENT of
// the tier or the oldest has been dirty for RAM_DIRTY_EXPIRE_MS, and keeps at
// most RAM_PUSH_INFLIGHT_MAX pushes in flight. Foreground first: while clients
// are active (a request within RAM_CLIENTS_IDLE_MS), only expired pages are
// pushed, RAM_PUSH_BUSY_INFLIGHT at a time; pages merely over the background
// mark wait for a pause (writes go on completing into RAM up to the dirty cap,
// beyond which they go straight below, so dirty RAM stays bounded). `pushAll()` (FLUSH, detach, mode
// switches, close) pushes every page dirty when it was called and fails if any
// push fails. A push goes through the engine's ordinary write path under the
// block's exclusive lock (CacheEngine.pushRamBlock), so the SSD tier's own
// rules (dirty records, commits, no-room fallbacks) apply unchanged.
// Concurrency: single-threaded; the timer is unref'd and stop() clears it.
import {
  RAM_BACKGROUND_PERCENT, RAM_CLIENTS_IDLE_MS, RAM_DIRTY_EXPIRE_MS, RAM_PUSH_BUSY_INFLIGHT, RAM_PUSH_INFLIGHT_MAX, RAM_PUSH_RETRY_MS,
} from '../constants.js';
import { Cancel, Timebase } from '../stdx/timebase.js';
import type { RamTier } from './ram-tier.js';

export interface RamPushTarget {
  readonly ram: RamTier | null;
  /** Pushes one block's dirty page down (no-op if it is no longer dirty). */
  pushRamBlock(originBlock: number): Promise<void>;
  /** Client requests served so far (any count that grows with every request; pushes must not add to it). */
  clientRequests(): number;
  readonly log: (line: string) => void;
}

export class RamWriter {
  private readonly pushing = new Set<number>();
  private cancelTimer: Cancel | undefined;
  private timerDueMs = Number.POSITIVE_INFINITY;
  private stopped = false;
  private failedAtMs = Number.NEGATIVE_INFINITY;
  private idleWaiters: Array<() => void> = [];
  /** clientRequests() when last looked at, and when it was last seen to change. */
  private requestsSeen = -1;
  private requestsChangedMs = Number.NEGATIVE_INFINITY;
  /** Pages pushed down so far (background and flushes). */
  pushed = 0;

  constructor(private readonly target: RamPushTarget, private readonly time: Timebase) {}

  /** A page became dirty: push now if over the background mark, else when the oldest expires. */
  noteDirty(): void {
    if (this.stopped) return;
    this.pump();
  }

  /** Pushes every page dirty now; rejects with the first push error. */
  async pushAll(): Promise<void> {
    const ram = this.target.ram;
    if (ram === null || ram.dirtyCount === 0) return;
    const blocks = ram.oldestDirty(ram.dirtyCount);
    let next = 0;
    let failure: unknown;
    const worker = async () => {
      while (next < blocks.length) {
        const block = blocks[next++]!;
        try {
          await this.target.pushRamBlock(block);
          this.pushed++;
        } catch (error) {
          failure ??= error;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(RAM_PUSH_INFLIGHT_MAX, blocks.length) }, worker));
    if (failure !== undefined) throw failure;
  }

  /** Stops background pushing and waits for pushes in flight. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.clearTimer();
    if (this.pushing.size > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  private pump(): void {
    const ram = this.target.ram;
    if (ram === null || this.stopped) return;
    const now = this.time.now();
    if (now - this.failedAtMs < RAM_PUSH_RETRY_MS) {
      this.arm(this.failedAtMs + RAM_PUSH_RETRY_MS);
      return;
    }
    const backgroundPages = Math.floor((ram.pages * RAM_BACKGROUND_PERCENT) / 100);
    const busy = this.clientsActive(now);
    while (ram.dirtyCount > this.pushing.size) {
      const oldest = ram.oldestDirtySince();
      const expired = now - oldest >= RAM_DIRTY_EXPIRE_MS;
      if (!expired && ram.dirtyCount <= backgroundPages) {
        this.arm(oldest + RAM_DIRTY_EXPIRE_MS);
        return;
      }
      const limit = !busy ? RAM_PUSH_INFLIGHT_MAX : expired ? RAM_PUSH_BUSY_INFLIGHT : 0;
      if (this.pushing.size >= limit) {
        // Look again when clients may have paused (or the oldest page expires).
        if (busy) this.arm(Math.min(this.requestsChangedMs + RAM_CLIENTS_IDLE_MS, expired ? Number.POSITIVE_INFINITY : oldest + RAM_DIRTY_EXPIRE_MS));
        return;
      }
      const block = ram.oldestDirtyExcept(this.pushing);
      if (block < 0) return;
      this.start(block);
    }
  }

  /** True if clients made a request within RAM_CLIENTS_IDLE_MS (as far as this writer has seen). */
  private clientsActive(now: number): boolean {
    const requests = this.target.clientRequests();
    if (requests !== this.requestsSeen) {
      this.requestsSeen = requests;
      this.requestsChangedMs = now;
    }
    return now - this.requestsChangedMs < RAM_CLIENTS_IDLE_MS;
  }

  private start(block: number): void {
    this.pushing.add(block);
    void this.target.pushRamBlock(block).then(() => {
      this.pushed++;
    }, (error: unknown) => {
      if (this.failedAtMs < 0 || this.time.now() - this.failedAtMs >= RAM_PUSH_RETRY_MS) {
        this.target.log(`RAM tier writeback failed (retrying): ${(error as Error).message}`);
      }
      this.failedAtMs = this.time.now();
    }).finally(() => {
      this.pushing.delete(block);
      if (this.pushing.size === 0 && this.idleWaiters.length > 0) {
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        for (const resolve of waiters) resolve();
      }
      this.pump();
    });
  }

  private arm(dueMs: number): void {
    if (this.cancelTimer !== undefined && this.timerDueMs <= dueMs) return;
    this.clearTimer();
    this.timerDueMs = dueMs;
    this.cancelTimer = this.time.after(Math.max(1, dueMs - this.time.now()), () => {
      this.cancelTimer = undefined;
      this.timerDueMs = Number.POSITIVE_INFINITY;
      this.pump();
    });
  }

  private clearTimer(): void {
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    this.timerDueMs = Number.POSITIVE_INFINITY;
  }
}
