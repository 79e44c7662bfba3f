// Sequential-stream detection for the bypass (flashcache's skip_seq_thresh_kb,
// bcache's sequential_cutoff): remembers the last few streams (where each
// ended and how long it has run) and says whether a request continues one that
// is already longer than the cutoff. Pure: no I/O, no timers, no allocation per
// request (the stream table is sized once).
//
// A request continues a stream when it starts at most STREAM_GAP_BYTES_MAX
// before or after the stream's end: NBD clients keep several requests in
// flight, so consecutive requests of one stream can arrive slightly out of
// order. Streams are replaced least recently used first.
// Concurrency: single-threaded; callers consult it once per request.

/** Streams remembered at once (bcache keeps 128 per cache set; a few clients need far fewer). */
export const STREAMS_MAX = 32;
/** Reordering tolerated between consecutive requests of one stream. */
export const STREAM_GAP_BYTES_MAX = 4 * 1024 * 1024;

export class SequentialDetector {
  private readonly endBytes = new Float64Array(STREAMS_MAX);
  private readonly runBytes = new Float64Array(STREAMS_MAX);
  private readonly usedTick = new Float64Array(STREAMS_MAX);
  private tick = 0;

  /**
   * Records the request and returns true if its stream (this request included)
   * has reached `cutoffBytes`. A cutoff of 0 turns detection off.
   */
  observe(offsetBytes: number, lengthBytes: number, cutoffBytes: number): boolean {
    if (cutoffBytes <= 0) return false;
    this.tick++;
    let stream = this.streamOf(offsetBytes);
    if (stream < 0) {
      stream = this.oldest();
      this.runBytes[stream] = 0;
      this.endBytes[stream] = offsetBytes;
    }
    this.runBytes[stream]! += lengthBytes;
    this.endBytes[stream] = Math.max(this.endBytes[stream]!, offsetBytes + lengthBytes);
    this.usedTick[stream] = this.tick;
    return this.runBytes[stream]! >= cutoffBytes;
  }

  /** What observe() would return for the request now, recording nothing. */
  wouldReach(offsetBytes: number, lengthBytes: number, cutoffBytes: number): boolean {
    if (cutoffBytes <= 0) return false;
    const stream = this.streamOf(offsetBytes);
    return (stream < 0 ? 0 : this.runBytes[stream]!) + lengthBytes >= cutoffBytes;
  }

  /** The remembered stream a request at `offsetBytes` continues (-1: none). */
  private streamOf(offsetBytes: number): number {
    for (let i = 0; i < STREAMS_MAX; i++) {
      if (this.usedTick[i]! > 0 && Math.abs(offsetBytes - this.endBytes[i]!) <= STREAM_GAP_BYTES_MAX) return i;
    }
    return -1;
  }

  /** The least recently used stream (an unused one first). */
  private oldest(): number {
    let oldest = 0;
    for (let i = 1; i < STREAMS_MAX; i++) if (this.usedTick[i]! < this.usedTick[oldest]!) oldest = i;
    return oldest;
  }

  /** Forgets every stream (after the cutoff changes). */
  reset(): void {
    this.endBytes.fill(0);
    this.runBytes.fill(0);
    this.usedTick.fill(0);
  }
}
