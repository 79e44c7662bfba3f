// Measures a throughput (bytes per second) over a sliding window of one-second
// buckets, and remembers the last rate seen while busy, so an ETA can be given
// even when the measured thing is momentarily idle. Pure: time comes from the caller.

/** One-second buckets averaged. */
export const RATE_WINDOW_SECONDS = 5;

export class RateMeter {
  private readonly buckets = new Float64Array(RATE_WINDOW_SECONDS);
  private currentSecond = -1;
  /** When the current busy period began (the window was empty before it). */
  private activeSinceMs: number | undefined;
  /** Bytes per second over the last busy window (0 until something was measured). */
  busyRate = 0;

  private advance(nowMs: number): void {
    const second = Math.floor(nowMs / 1000);
    if (this.currentSecond < 0) this.currentSecond = second;
    if (second - this.currentSecond >= RATE_WINDOW_SECONDS) this.buckets.fill(0);
    else for (let s = this.currentSecond + 1; s <= second; s++) this.buckets[s % RATE_WINDOW_SECONDS] = 0;
    this.currentSecond = Math.max(this.currentSecond, second);
  }

  add(bytes: number, nowMs: number): void {
    if (this.rate(nowMs) === 0) this.activeSinceMs = nowMs;
    this.buckets[this.currentSecond % RATE_WINDOW_SECONDS]! += bytes;
    const rate = this.rate(nowMs);
    if (rate > 0) this.busyRate = rate;
  }

  /** Bytes per second over the window, or over the busy period if it began within the window (at least 1 s). */
  rate(nowMs: number): number {
    this.advance(nowMs);
    let total = 0;
    for (const bytes of this.buckets) total += bytes;
    if (total === 0) {
      this.activeSinceMs = undefined;
      return 0;
    }
    const busySeconds = this.activeSinceMs === undefined ? RATE_WINDOW_SECONDS : (nowMs - this.activeSinceMs) / 1000;
    return total / Math.min(RATE_WINDOW_SECONDS, Math.max(1, busySeconds));
  }
}
