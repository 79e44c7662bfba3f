// When a small buffered write may run synchronously on the calling thread.
//
// A 4 KiB pwrite into the page cache costs about 12 µs of CPU here; handing it to
// libuv's thread pool and back costs more than that (a mutex, a futex wake of a
// pool thread, an eventfd write and an epoll wake-up per write). But a buffered
// write can block, and inline that stalls every client:
//   - now and then for 1-10 ms, while the kernel writes the file back (a commit's
//     fdatasync): measured, a few dozen such writes in 12 s of 4 KiB random writes
//     at depth 32, under 1% of the time;
//   - for up to 200 ms a call, when the kernel throttles a writer whose dirty pages
//     outrun the device (balance_dirty_pages), or reclaims memory.
// So each inline write is timed, and the time spent in writes slower than
// INLINE_WRITE_SLOW_MS is charged to a stall budget that refills at
// INLINE_STALL_BUDGET_MS_PER_SECOND (a share of the event loop's time, capped at
// INLINE_STALL_BUDGET_MS_MAX). When a slow write overdraws it, writes go to the
// thread pool for a backoff that doubles while that keeps happening (up to
// INLINE_BACKOFF_MS_MAX) and halves after a quiet spell. Sustained throttling thus
// costs one slow inline write per backoff.
//
// Pure logic: the caller times the write and reports it; times are milliseconds
// on a monotonic clock.
import { KiB } from '../constants.js';
import { assert } from '../stdx/assert.js';

/** Writes larger than this always go to the thread pool (their copy alone is long). */
export const INLINE_WRITE_BYTES_MAX = 64 * KiB;
/** An inline write slower than this is charged to the stall budget. */
export const INLINE_WRITE_SLOW_MS = 1;
/** The stall budget refills at this many milliseconds per second (2% of the event loop). */
export const INLINE_STALL_BUDGET_MS_PER_SECOND = 20;
/** Most stall time the budget holds (and what it starts with). */
export const INLINE_STALL_BUDGET_MS_MAX = 50;
/** Inline writes stay off this long after the budget is overdrawn; doubled while that repeats. */
export const INLINE_BACKOFF_MS_MIN = 1_000;
export const INLINE_BACKOFF_MS_MAX = 60_000;

export class InlineWriteGate {
  /** Inline writes are off until this time. */
  private offUntilMs = -Infinity;
  private backoffMs = INLINE_BACKOFF_MS_MIN;
  /** When the backoff last changed (or the budget was last overdrawn). */
  private backoffChangedMs = -Infinity;
  private budgetMs = INLINE_STALL_BUDGET_MS_MAX;
  private budgetAtMs = -Infinity;
  /** Writes made inline, slow inline writes, writes sent to the thread pool while off (for tests and metrics). */
  inlineWrites = 0;
  slowWrites = 0;
  deferredWrites = 0;

  constructor(private readonly slowMs = INLINE_WRITE_SLOW_MS) {
    assert(slowMs >= 0);
  }

  /** May a write of `bytes` run inline at `nowMs`? Counts the writes it defers. */
  allows(bytes: number, nowMs: number): boolean {
    if (bytes > INLINE_WRITE_BYTES_MAX) return false;
    if (nowMs < this.offUntilMs) {
      this.deferredWrites++;
      return false;
    }
    return true;
  }

  /** An inline write ran from `startMs` to `endMs`. */
  observe(startMs: number, endMs: number): void {
    this.inlineWrites++;
    const took = endMs - startMs;
    if (took <= this.slowMs) {
      // Quiet for twice the backoff: trust the device a little more.
      if (this.backoffMs > INLINE_BACKOFF_MS_MIN && endMs - this.backoffChangedMs > 2 * this.backoffMs) {
        this.backoffMs = Math.max(INLINE_BACKOFF_MS_MIN, this.backoffMs / 2);
        this.backoffChangedMs = endMs;
      }
      return;
    }
    this.slowWrites++;
    if (this.budgetAtMs > -Infinity) {
      this.budgetMs = Math.min(INLINE_STALL_BUDGET_MS_MAX, this.budgetMs + ((endMs - this.budgetAtMs) * INLINE_STALL_BUDGET_MS_PER_SECOND) / 1000);
    }
    this.budgetAtMs = endMs;
    this.budgetMs -= took;
    if (this.budgetMs >= 0) return;
    // Overdrawn again soon after the last backoff: back off longer.
    if (endMs - this.backoffChangedMs <= 2 * this.backoffMs) this.backoffMs = Math.min(INLINE_BACKOFF_MS_MAX, this.backoffMs * 2);
    this.backoffChangedMs = endMs;
    this.offUntilMs = endMs + this.backoffMs;
    this.budgetMs = 0;
  }

  /** How long inline writes stay off after the budget is next overdrawn. */
  get currentBackoffMs(): number {
    return this.backoffMs;
  }
}
