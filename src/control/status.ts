// The status object of CONTRACT.md (status --json, GET /status): built from a
// running engine, or from the persisted state of a stopped cache.
import type { CacheEngine } from '../cache/engine.js';
import type { Superblock } from '../format/superblock.js';

export interface CacheStatus {
  state: 'running' | 'degraded' | 'stopped';
  mode: string;
  policy: string;
  blockSize: number;
  assoc: number | 'full';
  cacheBlocks: number;
  validBlocks: number;
  dirtyBlocks: number;
  dirtyBytes: number;
  reads: number;
  writes: number;
  readHits: number;
  readMisses: number;
  writeHits: number;
  writeMisses: number;
  evictions: number;
  writebacks: number;
  uncachedReads: number;
  uncachedWrites: number;
  invalidations: number;
  flushes: number;
  commits: number;
  cacheErrors: number;
  originErrors: number;
  originBytes: number;
  origin: string;
  cleanShutdown?: boolean;
  /** Bytes written back per second over the last few seconds (running server only). */
  writebackRateBytesPerSecond?: number;
  /** Seconds to write every dirty block back at the current (or last measured) rate; null: unknown. */
  cleanEtaSeconds?: number | null;
  [extra: string]: unknown;
}

function assocOf(superblock: Superblock): number | 'full' {
  return superblock.assocFull ? 'full' : superblock.assoc;
}

export function engineStatus(engine: CacheEngine): CacheStatus {
  const superblock = engine.store.superblock;
  const stats = engine.stats;
  return {
    state: engine.state === 'degraded' ? 'degraded' : engine.state === 'running' ? 'running' : 'stopped',
    mode: engine.mode,
    policy: engine.policy.name,
    blockSize: engine.blockBytes,
    assoc: assocOf(superblock),
    cacheBlocks: engine.mapping.cacheBlocks,
    validBlocks: engine.table.validCount,
    dirtyBlocks: engine.table.dirtyCount,
    dirtyBytes: engine.table.dirtyCount * engine.blockBytes,
    reads: stats.reads,
    writes: stats.writes,
    readHits: stats.readHits,
    readMisses: stats.readMisses,
    writeHits: stats.writeHits,
    writeMisses: stats.writeMisses,
    evictions: stats.evictions,
    writebacks: stats.writebacks,
    uncachedReads: stats.uncachedReads,
    uncachedWrites: stats.uncachedWrites,
    invalidations: stats.invalidations,
    flushes: stats.flushes,
    commits: stats.commits,
    recordsDeferred: stats.recordsDeferred,
    metadataMemoryBytes: engine.metadataMemoryBytes,
    residentMemoryBytes: process.memoryUsage.rss(),
    cacheErrors: stats.cacheReadErrors + stats.cacheWriteErrors,
    originErrors: stats.originErrors,
    originBytes: engine.sizeBytes,
    origin: superblock.origin.name,
    ...cleaningStatus(engine),
    ...ramStatus(engine),
  };
}

/** The RAM tier: size, residency, and which reads it answered (readHits counts hits in either tier). */
function ramStatus(engine: CacheEngine): Record<string, number> {
  const ram = engine.ram;
  return {
    ramBytes: engine.ramBytes,
    ramBlocks: ram === null ? 0 : ram.residentPages,
    ramDirtyBlocks: ram === null ? 0 : ram.dirtyCount,
    ramReadHits: engine.ramStats.readHits,
    ramWriteAbsorbs: engine.ramStats.writeAbsorbs,
    ramZeroCopyReads: engine.ramStats.zeroCopyReads,
    ramPushes: engine.ramWriter.pushed,
  };
}

function cleaningStatus(engine: CacheEngine): Record<string, unknown> {
  const stats = engine.stats;
  const estimate = engine.cleaner.estimate();
  return {
    writebackBytes: stats.writebackBytes,
    writebackRateBytesPerSecond: Math.round(estimate.rateBytesPerSecond),
    cleanEtaSeconds: estimate.etaSeconds === null ? null : Math.ceil(estimate.etaSeconds),
    dirtyThresholdPercent: engine.cleaner.settings.dirtyThresholdPercent,
    /** Background cleaning paced to this while clients are busy (dirty-pace); 0: not paced now. */
    writebackPaceBytesPerSecond: Math.round(engine.cleaner.paceRateBytesPerSecond),
    sequentialBypassReads: stats.sequentialBypassReads,
    sequentialBypassWrites: stats.sequentialBypassWrites,
    /** Readahead window (0 = off), cold blocks it fetched next to read misses, and wider reads that failed (retried alone). */
    readaheadBytes: engine.readaheadBytes,
    readaheadBlocks: stats.readaheadBlocks,
    readaheadFailures: stats.readaheadFailures,
    noRoom: stats.noRoom,
    bytesRead: stats.bytesRead,
    bytesWritten: stats.bytesWritten,
    inflightRequests: engine.inflight,
    uptimeSeconds: Math.round(process.uptime()),
  };
}

/** Status of a cache that is not being served: counters are zero, block counts come from metadata. */
export function offlineStatus(superblock: Superblock, validBlocks: number, dirtyBlocks: number): CacheStatus {
  return {
    state: 'stopped', mode: superblock.mode, policy: superblock.policy, blockSize: superblock.blockBytes,
    assoc: assocOf(superblock), cacheBlocks: superblock.cacheBlocks, validBlocks, dirtyBlocks,
    dirtyBytes: dirtyBlocks * superblock.blockBytes,
    reads: 0, writes: 0, readHits: 0, readMisses: 0, writeHits: 0, writeMisses: 0, evictions: 0, writebacks: 0,
    uncachedReads: 0, uncachedWrites: 0, invalidations: 0, flushes: 0, commits: 0, cacheErrors: 0, originErrors: 0,
    originBytes: superblock.origin.sizeBytes, origin: superblock.origin.name, cleanShutdown: superblock.cleanShutdown,
  };
}
