// Counters the engine keeps as it works. Plain numbers: incrementing one costs
// nothing, and readers (status, metrics) take a snapshot.

export class CacheStats {
  reads = 0;
  writes = 0;
  readHits = 0;
  readMisses = 0;
  writeHits = 0;
  writeMisses = 0;
  evictions = 0;
  writebacks = 0;
  writebackBytes = 0;
  uncachedReads = 0;
  uncachedWrites = 0;
  /** Block reads and writes that bypassed the cache as part of a sequential stream. */
  sequentialBypassReads = 0;
  sequentialBypassWrites = 0;
  noRoom = 0;
  invalidations = 0;
  flushes = 0;
  commits = 0;
  /** Metadata records a commit left unwritten because their page could not be read (each is retried). */
  recordsDeferred = 0;
  trims = 0;
  zeroes = 0;
  prefetches = 0;
  /** Cold blocks fetched next to a read miss into free slots (readahead), and readaheads whose wider origin read failed. */
  readaheadBlocks = 0;
  readaheadFailures = 0;
  cacheReadErrors = 0;
  cacheWriteErrors = 0;
  originErrors = 0;
  /** Reads of clean cached blocks served from the origin because the cache is degraded. */
  degradedReads = 0;
  bytesRead = 0;
  bytesWritten = 0;

  snapshot(): Record<string, number> {
    return { ...this } as unknown as Record<string, number>;
  }
}
