// A token bucket for background writeback toward the origin: bytes per second
// and/or operations per second (0 = unlimited). An operation may start when
// both buckets are non-negative; it then takes its cost, possibly driving a
// bucket negative (debt), so one large write never waits forever and the
// long-run rate still holds. Pure: time comes from the caller's clock.

/** Tokens a bucket may save up while idle, in seconds of its rate (bounds bursts). */
export const RATE_BURST_SECONDS = 0.1;

export class RateLimiter {
  private bytesTokens = 0;
  private opsTokens = 0;
  private lastMs: number | undefined;

  constructor(public bytesPerSecond = 0, public opsPerSecond = 0) {}

  get limited(): boolean {
    return this.bytesPerSecond > 0 || this.opsPerSecond > 0;
  }

  set(bytesPerSecond: number, opsPerSecond: number): void {
    this.bytesPerSecond = bytesPerSecond;
    this.opsPerSecond = opsPerSecond;
    this.bytesTokens = 0;
    this.opsTokens = 0;
    this.lastMs = undefined;
  }

  /** Changes the byte rate from now on, keeping what the bucket holds (or owes) at the old rate. */
  retune(bytesPerSecond: number, nowMs: number): void {
    this.refill(nowMs);
    this.bytesPerSecond = bytesPerSecond;
    this.bytesTokens = Math.min(this.bytesTokens, bytesPerSecond * RATE_BURST_SECONDS);
  }

  private refill(nowMs: number): void {
    const elapsedSeconds = this.lastMs === undefined ? 0 : Math.max(0, nowMs - this.lastMs) / 1000;
    this.lastMs = nowMs;
    if (this.bytesPerSecond > 0) {
      this.bytesTokens = Math.min(this.bytesTokens + elapsedSeconds * this.bytesPerSecond, this.bytesPerSecond * RATE_BURST_SECONDS);
    }
    if (this.opsPerSecond > 0) {
      this.opsTokens = Math.min(this.opsTokens + elapsedSeconds * this.opsPerSecond, Math.max(1, this.opsPerSecond * RATE_BURST_SECONDS));
    }
  }

  /** Milliseconds to wait before an operation may start (0: now). */
  delayMs(nowMs: number): number {
    if (!this.limited) return 0;
    this.refill(nowMs);
    let delay = 0;
    if (this.bytesPerSecond > 0 && this.bytesTokens < 0) delay = Math.max(delay, (-this.bytesTokens / this.bytesPerSecond) * 1000);
    if (this.opsPerSecond > 0 && this.opsTokens < 0) delay = Math.max(delay, (-this.opsTokens / this.opsPerSecond) * 1000);
    return Math.ceil(delay);
  }

  /** Charges an operation of `bytes` that is starting now. */
  take(bytes: number, nowMs: number): void {
    if (!this.limited) return;
    this.refill(nowMs);
    if (this.bytesPerSecond > 0) this.bytesTokens -= bytes;
    if (this.opsPerSecond > 0) this.opsTokens -= 1;
  }
}
