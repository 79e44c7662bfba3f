// When a small buffered read or write may run synchronously on the calling thread.
//
// A 4 KiB pwrite into the page cache costs about 12 µs of CPU here, a pread from
// it less; handing either to libuv's thread pool and back costs more than that (a
// mutex, a futex wake of a pool thread, an eventfd write and an epoll wake-up per
// operation). But buffered I/O can block, and inline that stalls every client:
//   - a read the page cache cannot answer waits for the device (~100 µs for a SATA
//     SSD's 4 KiB read; milliseconds for a disk);
//   - a write, now and then for 1-10 ms while the kernel writes the file back (a
//     commit's fdatasync: measured, a few dozen such writes in 12 s of 4 KiB random
//     writes at depth 32, under 1% of the time), and for up to 200 ms a call when
//     the kernel throttles a writer whose dirty pages outrun the device
//     (balance_dirty_pages) or reclaims memory.
// So each inline operation is timed, and the time spent in those slower than the
// gate's threshold (INLINE_READ_SLOW_MS, INLINE_WRITE_SLOW_MS) is charged to a
// stall budget that refills at INLINE_STALL_BUDGET_MS_PER_SECOND (a share of the
// event loop's time, capped at INLINE_STALL_BUDGET_MS_MAX). When a slow operation
// overdraws it, that kind of I/O goes to the thread pool for a backoff that
// doubles while that keeps happening (up to INLINE_BACKOFF_MS_MAX) and halves after
// a quiet spell. A device that is slow for good (a cache device whose data is not
// in the page cache) thus costs one budget of inline stalls per backoff.
//
// Pure logic: the caller times the operation and reports it; times are
// milliseconds on a monotonic clock.
import { KiB } from '../constants.js';
import { assert } from '../stdx/assert.js';

/** Larger reads and writes always go to the thread pool (their copy alone is long; several run in parallel there). */
export const INLINE_IO_BYTES_MAX = 64 * KiB;
/** An inline write slower than this is charged to the stall budget. */
export const INLINE_WRITE_SLOW_MS = 1;
/** An inline read slower than this did not come from the page cache (a 4-64 KiB copy from it takes a few µs): charged. */
export const INLINE_READ_SLOW_MS = 0.05;
/** The stall budget refills at this many milliseconds per second (2% of the event loop). */
export const INLINE_STALL_BUDGET_MS_PER_SECOND = 20;
/** Most stall time the budget holds (and what it starts with). */
export const INLINE_STALL_BUDGET_MS_MAX = 50;
/** Inline operations stay off this long after the budget is overdrawn; doubled while that repeats. */
export const INLINE_BACKOFF_MS_MIN = 1_000;
export const INLINE_BACKOFF_MS_MAX = 60_000;

export class InlineIoGate {
  /** Inline operations are off until this time. */
  private offUntilMs = -Infinity;
  private backoffMs = INLINE_BACKOFF_MS_MIN;
  /** When the backoff last changed (or the budget was last overdrawn). */
  private backoffChangedMs = -Infinity;
  private budgetMs = INLINE_STALL_BUDGET_MS_MAX;
  private budgetAtMs = -Infinity;
  /** Operations made inline, slow inline ones, ones sent to the thread pool while off (for tests and metrics). */
  inline = 0;
  slow = 0;
  deferred = 0;

  /** `slowMs`: INLINE_WRITE_SLOW_MS or INLINE_READ_SLOW_MS. */
  constructor(private readonly slowMs: number) {
    assert(slowMs >= 0);
  }

  /** May an operation of `bytes` run inline at `nowMs`? Counts the ones it defers. */
  allows(bytes: number, nowMs: number): boolean {
    if (bytes > INLINE_IO_BYTES_MAX) return false;
    if (nowMs < this.offUntilMs) {
      this.deferred++;
      return false;
    }
    return true;
  }

  /** Would an operation of at most INLINE_IO_BYTES_MAX run inline at `nowMs`? (Counts nothing.) */
  open(nowMs: number): boolean {
    return nowMs >= this.offUntilMs;
  }

  /** An inline operation ran from `startMs` to `endMs`. */
  observe(startMs: number, endMs: number): void {
    this.inline++;
    const took = endMs - startMs;
    if (took <= this.slowMs) {
      // Quiet for twice the backoff: trust the device a little more.
      if (this.backoffMs > INLINE_BACKOFF_MS_MIN && endMs - this.backoffChangedMs > 2 * this.backoffMs) {
        this.backoffMs = Math.max(INLINE_BACKOFF_MS_MIN, this.backoffMs / 2);
        this.backoffChangedMs = endMs;
      }
      return;
    }
    this.slow++;
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

  /** How long inline operations stay off after the budget is next overdrawn. */
  get currentBackoffMs(): number {
    return this.backoffMs;
  }
}
