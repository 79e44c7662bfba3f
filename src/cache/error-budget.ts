// A decaying error budget for the cache device: each error adds one, and the
// total halves every ERROR_HALF_LIFE_MS. Over ERRORS_TO_DEGRADE the cache is
// degraded (clean data is served from the origin, nothing new is cached);
// once the total decays under ERRORS_TO_RECOVER it runs normally again.
// Time comes from the caller, so tests and simulations control it.

/** Errors (decayed) that move the cache to degraded: a few transient errors are tolerated. */
export const ERRORS_TO_DEGRADE = 8;
/** Decayed total under which a degraded cache runs normally again (hysteresis). */
export const ERRORS_TO_RECOVER = 2;
/** The budget halves every minute: a burst degrades at once, a quiet device recovers in minutes. */
export const ERROR_HALF_LIFE_MS = 60_000;

export class ErrorBudget {
  private total = 0;
  private updatedMs = 0;

  private decay(nowMs: number): void {
    if (nowMs > this.updatedMs) this.total *= 0.5 ** ((nowMs - this.updatedMs) / ERROR_HALF_LIFE_MS);
    this.updatedMs = Math.max(this.updatedMs, nowMs);
  }

  /** Records one error; returns the decayed total. */
  note(nowMs: number): number {
    this.decay(nowMs);
    this.total += 1;
    return this.total;
  }

  value(nowMs: number): number {
    this.decay(nowMs);
    return this.total;
  }
}
