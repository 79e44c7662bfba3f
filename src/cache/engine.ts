// The cache engine: a BlockDevice whose data lives on the origin while hot
// blocks live on the cache device (flashcache / dm-cache semantics).
//
// Responsibilities: the read, write, flush, trim, zero and prefetch paths in
// each mode; block allocation and eviction through the policy; per-block
// locking; metadata commits in the order data -> metadata -> flush; and
// background writeback (the Cleaner). Policies only decide; the metadata store
// only persists what the engine stages.
//
// Invariants (asserted where they are relied on):
//  - an origin block is indexed in at most one slot; a slot is in the index iff
//    it is VALID or RESERVED;
//  - a DIRTY slot is never evicted; a slot whose on-disk record says dirty is
//    never reused for another block until a commit has recorded otherwise;
//  - no two conflicting operations on one origin block run at once (BlockLocks);
//  - before an origin write that could make a clean cached copy stale, the
//    superblock says so (originWritesUncommitted), so recovery drops clean copies.
// Concurrency: single-threaded; every await point holds the block's lock.
import { BlockDevice, DeviceCapabilities, Extent, PinnedRead, WriteFlags, ZeroFlags, checkRange } from '../devices/block-device.js';
import { MetadataStore, recordFlags } from '../metadata/metadata-store.js';
import { CacheMode, Superblock } from '../format/superblock.js';
import { AccessContext, NO_BLOCK, READ_ACCESS, ReplacementPolicy, WRITE_ACCESS } from '../policies/policy.js';
import { BlockcacheError } from '../stdx/errors.js';
import { assert } from '../stdx/assert.js';
import { crc32c } from '../stdx/checksum.js';
import { BufferPool } from '../stdx/buffer-pool.js';
import { BlockIndex } from './block-index.js';
import { BlockLocks, HeldRange } from './block-locks.js';
import { CacheStats } from './cache-stats.js';
import { SetMapping } from './set-mapping.js';
import { DIRTY, DIRTY_ON_DISK, HAS_CRC, PERSISTED_DIRTY, RESERVED, SlotTable, VALID } from './slot-table.js';
import { Cleaner, CleanerSettings } from './cleaner.js';
import { Cancel, REAL_TIME, Timebase, every } from '../stdx/timebase.js';
import { CoalescingDevice } from '../layers/coalescing-device.js';
import { ErrorBudget, ERRORS_TO_DEGRADE, ERRORS_TO_RECOVER } from './error-budget.js';
import { SequentialDetector } from './sequential-detector.js';
import { createPolicy } from '../policies/registry.js';
import { fingerprintOrigin } from '../metadata/origin-identity.js';
import { RamTier } from './ram-tier.js';
import { RamWriter } from './ram-writer.js';
import {
  REQUEST_BLOCKS_INFLIGHT_MAX, PENDING_RECORDS_MAX, SEQUENTIAL_CUTOFF_BYTES_DEFAULT, READAHEAD_BYTES_DEFAULT, READAHEAD_BYTES_MAX, RAM_CACHE_BYTES_MAX, RAM_DIRTY_PERCENT, RAM_WRITE_BYTES_MAX, SSD_WRITE_NOW_BYTES_MAX,
} from '../constants.js';

/** Block buffers kept in the pool between misses. */
const BUFFER_POOL_KEEP = 256;
/**
 * Pending metadata is committed at least this often, so a crash loses little warmth (ext4
 * commits every 5 s too). Each commit flushes the cache file, i.e. writes back every dirty
 * page the kernel holds for it: at 1 s, 4 KiB random writes at depth 32 in writeback ran at
 * 0.665 of nbdkit file, at 5 s 0.79 (medians; bench/RESULTS.md, "Before/after: the periodic
 * commit every 5 s instead of every second").
 */
export const COMMIT_INTERVAL_MS_DEFAULT = 5000;

export type EngineState = 'running' | 'degraded' | 'stopping' | 'stopped';

export interface EngineParts {
  readonly cache: BlockDevice;
  readonly origin: BlockDevice;
  readonly store: MetadataStore;
  readonly table: SlotTable;
  readonly index: BlockIndex;
  readonly policy: ReplacementPolicy;
  readonly settings?: Partial<CleanerSettings>;
  readonly commitIntervalMs?: number;
  readonly log?: (line: string) => void;
  /** Clock and timers of background work: writeback, age scan, periodic commit, RAM writer (default real time). */
  readonly time?: Timebase;
  /** Request streams at least this long bypass the cache (0 = never). */
  readonly sequentialCutoffBytes?: number;
  /** Readahead window on read misses, into free slots only (0 = off). */
  readonly readaheadBytes?: number;
  /** Size of the RAM tier above the SSD tier (0 or absent = none). */
  readonly ramBytes?: number;
}

/** Counters of the RAM tier (block granularity). */
export class RamStats {
  readHits = 0;
  /** Whole-block writes and partial writes to resident pages completed in RAM (writeback). */
  writeAbsorbs = 0;
  /** Reads sent as views of RAM pages (zero-copy: the pages were lent to the reply). */
  zeroCopyReads = 0;
}

type IntentState = 'clear' | 'setting' | 'set';

export class CacheEngine implements BlockDevice {
  readonly name: string;
  readonly sizeBytes: number;
  readonly capabilities: DeviceCapabilities;
  readonly blockBytes: number;
  readonly mapping: SetMapping;
  readonly stats = new CacheStats();
  readonly locks = new BlockLocks();
  readonly cacheDevice: BlockDevice;
  readonly origin: BlockDevice;
  readonly table: SlotTable;
  readonly index: BlockIndex;
  readonly store: MetadataStore;
  readonly cleaner: Cleaner;
  policy: ReplacementPolicy;
  mode: CacheMode;
  state: EngineState = 'running';
  /**
   * Sequential bypass (flashcache skip_seq_thresh, bcache sequential_cutoff):
   * once a stream of requests reaches this many bytes, its reads of uncached
   * blocks go to the origin without filling the cache and its writes go around
   * the cache (clean copies dropped, dirty copies updated in place). 0 = off.
   */
  sequentialCutoffBytes: number;
  /**
   * Readahead (bcache's readahead, only into free slots): a read miss of at most
   * this many bytes also fetches the cold blocks around it within the aligned
   * window of this size, in the same origin read. 0 = off.
   */
  readaheadBytes: number;
  private readonly readStreams = new SequentialDetector();
  private readonly writeStreams = new SequentialDetector();
  private readonly pool: BufferPool;
  private readonly errorBudget = new ErrorBudget();
  private readonly dataOffsetBytes: number;
  private readonly log: (line: string) => void;
  private inflightRequests = 0;
  private drained: (() => void) | undefined;
  private commitRunning: Promise<void> | undefined;
  private commitQueued: Promise<void> | undefined;
  private superblockChain: Promise<unknown> = Promise.resolve();
  private intent: IntentState = 'clear';
  /** Records the last commit could not write (their pages were unreadable): see `deferRecords`. */
  private recordsDeferred = 0;
  private intentSetting: Promise<void> | undefined;
  private originWritesInflight = 0;
  private originEpoch = 0;
  /**
   * Origin writes (client, trim, zero and writeback) finished so far, and how
   * many of them the last origin flush issued by a commit covers. A flush covers
   * only writes finished before it was issued, so a write still in flight when a
   * commit flushes the origin leaves the counts apart and the next commit
   * flushes again (a boolean reset at staging lost such writes: replay with the
   * crash simulator, docs/DURABILITY.md).
   */
  private originWritesCompleted = 0;
  private originWritesFlushed = 0;
  private cancelCommitTimer: Cancel | undefined;
  /** readRunOfHits' slot per block while it checks a read qualifies (synchronously), reused. */
  private hitSlotsScratch = new Int32Array(0);
  private commitEveryMs = 0;
  readonly time: Timebase;
  private readonly evictableCheck = (slot: number): boolean => this.isEvictable(slot);
  /**
   * The RAM tier (null = off). A valid page holds its block's newest content:
   * reads consult it before anything else; a dirty page is newer than the SSD
   * tier and the origin. See docs/ARCHITECTURE.md, "The RAM tier".
   */
  ram: RamTier | null = null;
  /** readNow's scratch list of RAM page runs (first page, count), reused. */
  private readonly ramRuns: number[] = [];
  readonly ramStats = new RamStats();
  readonly ramWriter: RamWriter;
  /** False while the tier is being resized or the engine closes: no write completes into RAM. */
  private ramAbsorb = true;

  constructor(parts: EngineParts) {
    const superblock = parts.store.superblock;
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const engine = this;
    // Adjacent block reads and writes of one request become single device operations.
    this.cacheDevice = new CoalescingDevice(parts.cache, true);
    this.origin = new CoalescingDevice(parts.origin);
    this.store = parts.store;
    this.table = parts.table;
    this.index = parts.index;
    this.policy = parts.policy;
    this.mapping = parts.table.mapping;
    this.mode = superblock.mode;
    this.blockBytes = superblock.blockBytes;
    this.dataOffsetBytes = superblock.dataOffsetBytes;
    this.sizeBytes = parts.origin.sizeBytes;
    this.name = `blockcache:${parts.cache.name}`;
    this.capabilities = { trim: true, fastZero: parts.origin.capabilities.fastZero, multiConn: true };
    this.pool = new BufferPool(this.blockBytes, BUFFER_POOL_KEEP);
    this.log = parts.log ?? (() => {});
    this.intent = superblock.originWritesUncommitted ? 'set' : 'clear';
    this.time = parts.time ?? REAL_TIME;
    this.cleaner = new Cleaner(this, parts.settings, this.time);
    this.sequentialCutoffBytes = parts.sequentialCutoffBytes ?? SEQUENTIAL_CUTOFF_BYTES_DEFAULT;
    this.readaheadBytes = parts.readaheadBytes ?? READAHEAD_BYTES_DEFAULT;
    this.ram = this.newRamTier(parts.ramBytes ?? 0);
    this.ramWriter = new RamWriter({
      get ram() { return engine.ram; },
      pushRamBlock: (originBlock) => this.pushRamBlock(originBlock),
      clientRequests: () => this.stats.reads + this.stats.writes,
      log: this.log,
    }, this.time);
    this.setCommitInterval(parts.commitIntervalMs ?? COMMIT_INTERVAL_MS_DEFAULT);
  }

  // ---- public BlockDevice ---------------------------------------------------

  async read(target: Buffer, offsetBytes: number): Promise<void> {
    checkRange(this.sizeBytes, offsetBytes, target.length, false);
    this.enter();
    try {
      this.stats.reads++;
      this.stats.bytesRead += target.length;
      const bypass = this.readStreams.observe(offsetBytes, target.length, this.sequentialCutoffBytes);
      // Each fast path takes its locks before it returns a promise: requests keep their arrival order.
      if (target.length > this.blockBytes) {
        const hits = this.readRunOfHits(target, offsetBytes);
        if (hits !== null && await hits) return;
      }
      if (!bypass) {
        // Readahead first: a cold read up to the window also fetches its cold neighbours;
        // a longer one (or one with no neighbour to fetch) is a cold run of its own blocks.
        const ahead = this.readAhead(target, offsetBytes);
        if (ahead !== null) return await ahead;
        const cold = target.length > this.blockBytes ? this.readRunOfMisses(target, offsetBytes) : null;
        if (cold !== null) return await cold;
      }
      await this.forEachBlock(offsetBytes, target.length, (originBlock, inner, length, at) =>
        this.readBlock(originBlock, inner, target.subarray(at, at + length), bypass));
    } finally {
      this.leave();
    }
  }

  /**
   * Synchronous fast path: serves the read when every block it touches is in RAM,
   * or when it lies within one block that is an SSD-tier hit the cache device can
   * read inline now (readSsdHitNow). False: nothing done, call read().
   */
  readNow(target: Buffer, offsetBytes: number): boolean {
    const ram = this.ram;
    const length = target.length;
    if (length === 0 || this.state === 'stopping' || this.state === 'stopped') return false;
    if (!(offsetBytes >= 0 && offsetBytes + length <= this.sizeBytes)) return false; // read() reports the error
    const blockBytes = this.blockBytes;
    const first = Math.floor(offsetBytes / blockBytes);
    const last = Math.floor((offsetBytes + length - 1) / blockBytes);
    if (first === last) {
      const page = ram === null ? -1 : ram.lookup(first);
      if (page < 0) return this.readSsdHitNow(first, offsetBytes, target);
      ram!.copyOut(page, offsetBytes - first * blockBytes, target, 0, length);
    } else {
      if (ram === null) return false;
      // Blocks in consecutive pages (a sequential fill takes pages in order) are copied in one call.
      const runs = this.ramRuns;
      runs.length = 0;
      if (!ram.pageRuns(first, last, runs)) return false;
      let block = first;
      for (let i = 0; i < runs.length; i += 2) {
        const pages = runs[i + 1]!;
        const start = Math.max(offsetBytes, block * blockBytes);
        const end = Math.min(offsetBytes + length, (block + pages) * blockBytes);
        ram.copyOutRun(runs[i]!, pages, start - block * blockBytes, target, start - offsetBytes, end - start);
        block += pages;
      }
    }
    this.countRamRead(offsetBytes, length, last - first + 1);
    return true;
  }

  /**
   * RAM tier zero-copy path: when every block the read touches is in RAM and
   * enough pages may be lent, returns the data as views of the RAM pages (one
   * per run of consecutive pages), lent until `release` (see RamTier: a write
   * meanwhile moves the block, so the views keep the bytes read now).
   */
  readPinned(offsetBytes: number, lengthBytes: number): PinnedRead | null {
    const ram = this.ram;
    if (ram === null || lengthBytes === 0 || this.state === 'stopping' || this.state === 'stopped') return null;
    if (!(offsetBytes >= 0 && offsetBytes + lengthBytes <= this.sizeBytes)) return null;
    const blockBytes = this.blockBytes;
    const first = Math.floor(offsetBytes / blockBytes);
    const last = Math.floor((offsetBytes + lengthBytes - 1) / blockBytes);
    const runs: number[] = [];
    if (!ram.canLend(last - first + 1) || !ram.pageRuns(first, last, runs)) return null;
    const views: Buffer[] = [];
    let block = first;
    for (let i = 0; i < runs.length; i += 2) {
      const pages = runs[i + 1]!;
      const start = Math.max(offsetBytes, block * blockBytes);
      const end = Math.min(offsetBytes + lengthBytes, (block + pages) * blockBytes);
      views.push(ram.lendRun(runs[i]!, pages, start - block * blockBytes, end - start));
      block += pages;
    }
    this.countRamRead(offsetBytes, lengthBytes, last - first + 1);
    this.ramStats.zeroCopyReads++;
    let released = false;
    return {
      views,
      release: () => {
        assert(!released, 'a pinned read released twice');
        released = true;
        for (let i = 0; i < runs.length; i += 2) ram.giveBack(runs[i]!, runs[i + 1]!);
      },
    };
  }

  /**
   * A read within one block that is a valid SSD-tier hit, read inline by the cache
   * device (a page-cached file: FileDevice.readNow) with no promise, lock or
   * callback: the event loop does not turn during it, so no write, fill, eviction
   * or invalidation can interleave. Only while running (degraded reads of clean
   * copies go to the origin), only when no one holds or waits for the block's lock
   * (a write may be changing it), and with the RAM tier on only for whole blocks
   * (RAM keeps whole blocks). A read error is left to read(), which counts and
   * handles it.
   */
  private readSsdHitNow(originBlock: number, offsetBytes: number, target: Buffer): boolean {
    const readNow = this.cacheDevice.readNow;
    if (readNow === undefined || this.state !== 'running') return false;
    const slot = this.index.get(originBlock);
    if (slot < 0 || !this.table.has(slot, VALID) || this.locks.isBusy(originBlock)) return false;
    const inner = offsetBytes - originBlock * this.blockBytes;
    if (this.ram !== null && !(inner === 0 && target.length === this.blockLength(originBlock))) return false;
    try {
      if (!readNow(target, this.slotOffset(slot) + inner)) return false;
    } catch {
      return false;
    }
    this.stats.reads++;
    this.stats.bytesRead += target.length;
    this.readStreams.observe(offsetBytes, target.length, this.sequentialCutoffBytes);
    this.countSsdHit(slot);
    this.keepInRam(originBlock, inner, target);
    return true;
  }

  private countRamRead(offsetBytes: number, length: number, blocks: number): void {
    this.stats.reads++;
    this.stats.bytesRead += length;
    this.stats.readHits += blocks;
    this.ramStats.readHits += blocks;
    this.readStreams.observe(offsetBytes, length, this.sequentialCutoffBytes);
  }

  /**
   * Synchronous write: into RAM (writeRamNow), or else, when none of its blocks has a RAM
   * page, as an SSD-tier hit (writeSsdHitNow: what the ordinary path would do for them,
   * e.g. once the dirty bound is reached). False: nothing done, call write().
   */
  writeNow(source: Buffer, offsetBytes: number, flags?: WriteFlags): boolean {
    const ram = this.ram;
    if (ram !== null && this.writeRamNow(ram, source, offsetBytes, flags)) return true;
    return this.writeSsdHitNow(source, offsetBytes, flags);
  }

  /**
   * RAM tier fast path (writeback only): completes the write into RAM as dirty
   * pages when no block it touches is busy, each is resident or wholly
   * covered, and the dirty bound allows. FUA writes, writes over
   * RAM_WRITE_BYTES_MAX that touch a block with no page, and sequential streams that bypass
   * the cache take the ordinary path.
   */
  private writeRamNow(ram: RamTier, source: Buffer, offsetBytes: number, flags?: WriteFlags): boolean {
    const length = source.length;
    if (!this.ramAbsorb || length === 0 || this.mode !== 'writeback' || this.state !== 'running' || flags?.fua) return false;
    if (!(offsetBytes >= 0 && offsetBytes + length <= this.sizeBytes)) return false;
    const blockBytes = this.blockBytes;
    const first = Math.floor(offsetBytes / blockBytes);
    const last = Math.floor((offsetBytes + length - 1) / blockBytes);
    let newlyDirty = 0;
    for (let block = first; block <= last; block++) {
      if (this.locks.isBusy(block)) return false;
      const page = ram.lookup(block);
      if (page < 0) {
        if (length > RAM_WRITE_BYTES_MAX) return false; // a large write takes no new pages
        const start = block * blockBytes;
        if (offsetBytes > start || offsetBytes + length < start + this.blockLength(block)) return false;
      }
      if (page < 0 || !ram.isDirty(page)) newlyDirty++;
    }
    if (ram.dirtyCount + newlyDirty > ram.dirtyMax) return false;
    // Asked, not recorded: a declined write is observed once, by writeSsdHitNow or write().
    if (this.writeStreams.wouldReach(offsetBytes, length, this.sequentialCutoffBytes)) return false;
    const now = this.time.now();
    let hits = 0; // counted only if the write completes here (a decline is redone, and counted, by write())
    for (let block = first; block <= last; block++) {
      const start = Math.max(offsetBytes, block * blockBytes);
      const end = Math.min(offsetBytes + length, (block + 1) * blockBytes);
      let page = ram.lookup(block);
      // A page found above may have been taken since, as the victim of an earlier block's
      // allocation or copy on write. Declining part-way is safe: write() redoes the whole
      // request with the same bytes. A partly written fresh page would serve garbage.
      if (page < 0 && (start > block * blockBytes || end < block * blockBytes + this.blockLength(block))) return false;
      if (page >= 0 || this.index.get(block) >= 0) hits++;
      if (page < 0) page = ram.allocate(block);
      if (page < 0) return false; // every page dirty: write() redoes the whole request (same bytes)
      this.absorb(ram, page, start - block * blockBytes, source, start - offsetBytes, end - start, now);
    }
    this.stats.writeHits += hits;
    this.stats.writeMisses += last - first + 1 - hits;
    this.writeStreams.observe(offsetBytes, length, this.sequentialCutoffBytes);
    this.stats.writes++;
    this.stats.bytesWritten += length;
    this.ramWriter.noteDirty();
    return true;
  }

  /**
   * A writeback write of at most SSD_WRITE_NOW_BYTES_MAX over blocks cached on the SSD tier
   * in consecutive slots (one block, usually) none of which has a RAM page (a block with one,
   * maybe given by writeRamNow before it declined, is write()'s), made inline by the cache device
   * (FileDevice.writeNow) as one write and each block marked as writebackHit does, with no
   * promise or lock: the event loop does not turn during it, so no read, fill, eviction or
   * cleaning can interleave. Only while running, only when no one holds or waits for any of
   * the blocks, not FUA, and not when a sequential stream would take a clean block around
   * the cache (write() does that). A device error is left to write(), which redoes the whole
   * write, counts and handles it.
   */
  private writeSsdHitNow(source: Buffer, offsetBytes: number, flags?: WriteFlags): boolean {
    const writeNow = this.cacheDevice.writeNow;
    const length = source.length;
    if (writeNow === undefined || length === 0 || length > SSD_WRITE_NOW_BYTES_MAX) return false;
    if (this.mode !== 'writeback' || this.state !== 'running' || flags?.fua) return false;
    if (!(offsetBytes >= 0 && offsetBytes + length <= this.sizeBytes)) return false; // write() reports the error
    const first = Math.floor(offsetBytes / this.blockBytes);
    const last = Math.floor((offsetBytes + length - 1) / this.blockBytes);
    const firstSlot = this.index.get(first);
    if (firstSlot < 0) return false;
    const ram = this.ram;
    let clean = false;
    for (let block = first; block <= last; block++) {
      const slot = firstSlot + (block - first);
      if (this.index.get(block) !== slot || !this.table.has(slot, VALID) || this.locks.isBusy(block)) return false;
      if (ram !== null && ram.lookup(block) >= 0) return false;
      if (!this.table.has(slot, DIRTY)) clean = true;
    }
    const cutoff = this.sequentialCutoffBytes;
    if (clean && this.writeStreams.wouldReach(offsetBytes, length, cutoff)) return false;
    try {
      if (!writeNow(source, this.slotOffset(firstSlot) + offsetBytes - first * this.blockBytes)) return false;
    } catch {
      return false;
    }
    this.writeStreams.observe(offsetBytes, length, cutoff);
    this.stats.writes++;
    this.stats.bytesWritten += length;
    this.stats.writeHits += last - first + 1;
    for (let slot = firstSlot; slot <= firstSlot + (last - first); slot++) {
      this.policy.hit(slot, WRITE_ACCESS);
      this.markRewritten(slot);
    }
    this.cleaner.noteDirty();
    return true;
  }

  async write(source: Buffer, offsetBytes: number, flags?: WriteFlags): Promise<void> {
    checkRange(this.sizeBytes, offsetBytes, source.length, true);
    this.enter();
    try {
      this.stats.writes++;
      this.stats.bytesWritten += source.length;
      const bypass = this.writeStreams.observe(offsetBytes, source.length, this.sequentialCutoffBytes);
      const fua = flags?.fua === true;
      const run = bypass ? null : this.writeRunOfMisses(source, offsetBytes) ?? this.writeRunOfHits(source, offsetBytes);
      if (run !== null) await run;
      else {
        // A large write completes into RAM only where its blocks already are (see writeThroughRam).
        const allocateRam = source.length <= RAM_WRITE_BYTES_MAX;
        await this.forEachBlock(offsetBytes, source.length, (originBlock, inner, length, at) =>
          this.writeBlock(originBlock, inner, source.subarray(at, at + length), bypass, fua, allocateRam));
      }
      if (fua) await this.commit();
    } finally {
      this.leave();
    }
    if (this.mode === 'writeback') this.cleaner.noteDirty();
  }

  /** FLUSH: every write completed before this call is durable when it resolves. */
  async flush(): Promise<void> {
    this.enter();
    try {
      this.stats.flushes++;
      await this.ramWriter.pushAll();
      await this.commit();
    } finally {
      this.leave();
    }
  }

  /** TRIM: cached copies of fully covered blocks are dropped and the origin is trimmed there. */
  async trim(offsetBytes: number, lengthBytes: number, flags?: WriteFlags): Promise<void> {
    checkRange(this.sizeBytes, offsetBytes, lengthBytes, true);
    this.enter();
    try {
      this.stats.trims++;
      const { first, end } = this.coveredBlocks(offsetBytes, lengthBytes);
      if (end > first) {
        await this.invalidateRange(first, end);
        const start = first * this.blockBytes;
        const stop = Math.min(end * this.blockBytes, this.sizeBytes);
        await this.originOperation(() => this.origin.trim(start, stop - start));
        await this.invalidateRange(first, end); // fills that raced the origin trim (see writeZeroes)
      }
      if (flags?.fua) await this.commit();
    } finally {
      this.leave();
    }
  }

  /** WRITE_ZEROES: whole blocks are invalidated and zeroed on the origin; partial edges are written. */
  async writeZeroes(offsetBytes: number, lengthBytes: number, flags?: ZeroFlags): Promise<void> {
    checkRange(this.sizeBytes, offsetBytes, lengthBytes, true);
    if (flags?.fastZero && !this.origin.capabilities.fastZero) {
      throw new BlockcacheError('ENOTSUP', 'the origin cannot zero quickly');
    }
    this.enter();
    try {
      this.stats.zeroes++;
      const { first, end } = this.coveredBlocks(offsetBytes, lengthBytes);
      const wholeStart = first * this.blockBytes;
      const wholeEnd = Math.min(end * this.blockBytes, this.sizeBytes);
      const edges: Array<[number, number]> = end > first
        ? [[offsetBytes, wholeStart - offsetBytes], [wholeEnd, offsetBytes + lengthBytes - wholeEnd]]
        : [[offsetBytes, lengthBytes]];
      for (const [start, length] of edges) {
        if (length > 0) {
          await this.forEachBlock(start, length, (originBlock, inner, blockLength) =>
            this.writeBlock(originBlock, inner, this.zeroes(blockLength)));
        }
      }
      if (end > first) {
        // Dirty blocks are zeroed in the cache, not dropped: an invalid record could be
        // committed before the origin's zeroes are durable, and a crash would then bring
        // back the origin's older data (found by the crash simulator, seed 20300).
        await this.invalidateRange(first, end, true);
        await this.originOperation(() => this.origin.writeZeroes(wholeStart, wholeEnd - wholeStart,
          { noHole: flags?.noHole, fastZero: flags?.fastZero }));
        // The blocks are not locked during the origin operation (a range can be the whole
        // device), so a concurrent read miss may have cached the data from before it: drop
        // such copies again before acknowledging (found by the crash simulator, seed 5047).
        await this.invalidateRange(first, end, true);
      }
      if (flags?.fua) await this.commit();
    } finally {
      this.leave();
    }
  }

  /** CACHE: pulls the range from the origin into the cache. */
  async cache(offsetBytes: number, lengthBytes: number): Promise<void> {
    checkRange(this.sizeBytes, offsetBytes, lengthBytes, false);
    this.enter();
    try {
      this.stats.prefetches++;
      await this.forEachBlock(offsetBytes, lengthBytes, (originBlock) => this.prefetchBlock(originBlock));
    } finally {
      this.leave();
    }
  }

  async blockStatus(offsetBytes: number, lengthBytes: number): Promise<Extent[]> {
    checkRange(this.sizeBytes, offsetBytes, lengthBytes, false);
    const extents = this.origin.blockStatus
      ? await this.origin.blockStatus(offsetBytes, lengthBytes)
      : [{ lengthBytes, flags: 0 }];
    // A hole on the origin is data if a dirty (or in-flight) cached block lies in it.
    let position = offsetBytes;
    for (const extent of extents) {
      if (extent.flags !== 0 && this.anyCachedWrite(position, extent.lengthBytes)) extent.flags = 0;
      position += extent.lengthBytes;
    }
    return extents;
  }

  /** Clean shutdown: finish requests and writebacks, commit, mark the superblock clean. */
  async close(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'stopping';
    if (this.inflightRequests > 0) await new Promise<void>((resolve) => (this.drained = resolve));
    this.ramAbsorb = false;
    await this.ramWriter.stop();
    await this.ramWriter.pushAll(); // dirty RAM pages land in the SSD tier, where they persist
    await this.cleaner.stop();
    this.cancelCommitTimer?.();
    await this.commit();
    if (this.recordsDeferred > 0) {
      // The superblock still says origin writes are uncommitted: the next start recovers, dropping clean copies.
      this.log(`${this.recordsDeferred} metadata records could not be written: not marked as shut down cleanly`);
      this.state = 'stopped';
      return;
    }
    // The origin is now exactly as blockcache leaves it: record that, and that no crash happened.
    const fingerprint = await fingerprintOrigin(this.origin);
    const origin = { ...this.store.superblock.origin, fingerprint, fingerprintValid: true };
    await this.writeSuperblock({ cleanShutdown: true, originWritesUncommitted: false, origin });
    await this.cacheDevice.flush();
    this.state = 'stopped';
  }

  /** Writes every dirty block back to the origin (flush command, detach); `signal` stops it early. */
  async writebackAll(progress?: (dirtyBlocks: number) => void, signal?: AbortSignal): Promise<void> {
    this.enter();
    try {
      await this.ramWriter.pushAll();
      await this.cleaner.writebackAll(progress, signal);
    } finally {
      this.leave();
    }
  }

  /**
   * Replaces the replacement policy, keeping every cached block: the new policy
   * is built and told about every VALID slot synchronously (no request can see
   * it half-built), then the choice is persisted so a restart keeps it.
   * Reserved slots join it when their fill completes (complete() inserts).
   */
  async setPolicy(name: string): Promise<void> {
    const policy = createPolicy(name, { cacheBlocks: this.mapping.cacheBlocks, assoc: this.mapping.assoc, originOf: (slot) => this.table.originOf[slot]! });
    for (let slot = 0; slot < this.mapping.cacheBlocks; slot++) {
      if (this.table.has(slot, VALID)) policy.insert(slot, this.table.originOf[slot]!);
    }
    this.policy = policy;
    await this.writeSuperblock({ policy: name });
    await this.cacheDevice.flush();
  }

  /**
   * Switches the write mode and persists it. Leaving writeback, the order keeps
   * rule 4 (dirty data is never dropped) and never persists a non-writeback
   * mode while a dirty block exists:
   *   1. this.mode = target: from now on no write makes a block dirty (a write
   *      to a block that is still dirty updates it in the cache: writeBlock);
   *   2. writebackAll(): cleans every dirty block, including those written to
   *      during it, until none is left;
   *   3. only then the superblock records the new mode.
   * If writeback fails, the mode returns to writeback and the error is thrown.
   * Callers serialise switches (src/control/settings.ts).
   */
  async setMode(mode: CacheMode): Promise<void> {
    if (this.mode === 'writeback' && mode !== 'writeback') {
      this.mode = mode;
      try {
        await this.writebackAll();
        if (this.table.dirtyCount !== 0) throw new BlockcacheError('EIO', `${this.table.dirtyCount} dirty blocks are left after writeback`);
      } catch (error) {
        this.mode = 'writeback';
        this.cleaner.noteDirty();
        throw error;
      }
    } else this.mode = mode;
    await this.writeSuperblock({ mode });
    await this.cacheDevice.flush();
  }

  /** Bytes the RAM tier holds (0 = off). */
  get ramBytes(): number {
    return this.ram === null ? 0 : this.ram.pages * this.blockBytes;
  }

  /**
   * Resizes the RAM tier (0 turns it off). Writes stop completing into RAM,
   * every dirty page is pushed down, then the tier is replaced (clean copies
   * are dropped: the new tier starts empty). Callers serialise resizes.
   */
  async setRamBytes(bytes: number): Promise<void> {
    assert(Number.isSafeInteger(bytes) && bytes >= 0 && bytes <= RAM_CACHE_BYTES_MAX);
    this.ramAbsorb = false;
    try {
      await this.ramWriter.pushAll();
      const ram = this.ram;
      if (ram !== null && ram.dirtyCount !== 0) throw new BlockcacheError('EIO', `${ram.dirtyCount} dirty RAM pages are left after pushing`);
      this.ram = this.newRamTier(bytes);
    } finally {
      this.ramAbsorb = true;
    }
  }

  private newRamTier(bytes: number): RamTier | null {
    const pages = Math.floor(bytes / this.blockBytes);
    if (pages === 0) return null;
    return new RamTier(pages, this.blockBytes, Math.max(1, Math.floor((pages * RAM_DIRTY_PERCENT) / 100)));
  }

  /** Milliseconds between periodic commits (0: none, as in tests and detach). */
  get commitIntervalMs(): number {
    return this.commitEveryMs;
  }

  /** Re-arms the periodic commit to run every `ms` milliseconds (0 = never); its count starts now. */
  setCommitInterval(ms: number): void {
    assert(Number.isSafeInteger(ms) && ms >= 0, 'a commit interval is a whole number of milliseconds');
    this.cancelCommitTimer?.();
    this.cancelCommitTimer = undefined;
    this.commitEveryMs = ms;
    if (ms > 0 && this.state !== 'stopping' && this.state !== 'stopped') {
      this.cancelCommitTimer = every(this.time, ms, () => this.periodicCommit());
    }
  }

  /** Changes the readahead window (0 = off). */
  setReadahead(bytes: number): void {
    assert(Number.isSafeInteger(bytes) && bytes >= 0 && bytes <= READAHEAD_BYTES_MAX);
    this.readaheadBytes = bytes;
  }

  /** Changes the sequential cutoff (0 = off); streams seen so far are forgotten. */
  setSequentialCutoff(bytes: number): void {
    assert(Number.isSafeInteger(bytes) && bytes >= 0);
    this.sequentialCutoffBytes = bytes;
    this.readStreams.reset();
    this.writeStreams.reset();
  }

  // ---- per-block paths --------------------------------------------------------

  /** True if the block is in either tier (for hit counting). */
  private isCached(originBlock: number): boolean {
    return this.index.get(originBlock) >= 0 || (this.ram !== null && this.ram.lookup(originBlock) >= 0);
  }

  /** Serves the block from RAM if it is there (the newest copy); true if it did. */
  private readRam(originBlock: number, inner: number, target: Buffer): boolean {
    const ram = this.ram;
    if (ram === null) return false;
    const page = ram.lookup(originBlock);
    if (page < 0) return false;
    ram.copyOut(page, inner, target, 0, target.length);
    this.stats.readHits++;
    this.ramStats.readHits++;
    return true;
  }

  /** Keeps a clean copy of a whole block read from below (no-op without a RAM tier). */
  private keepInRam(originBlock: number, inner: number, data: Buffer): void {
    const length = this.blockLength(originBlock);
    if (this.ram !== null && inner === 0 && data.length >= length) this.ram.putClean(originBlock, data, 0, length);
  }

  /**
   * Fast path for a whole-block read whose blocks are all cache hits on the SSD
   * tier, none in RAM and none locked but by other such reads: one shared range lock, one device
   * read per run of consecutive slots, no promise per block. Null (nothing
   * done, no lock held) when the read does not qualify, a promise of false when
   * a device read fails: the caller then takes the per-block path, which owns
   * every other case (misses, RAM copies, waits, partial blocks, read errors).
   * The range lock is taken before this returns, so requests keep their arrival order.
   */
  private readRunOfHits(target: Buffer, offsetBytes: number): Promise<boolean> | null {
    const blockBytes = this.blockBytes;
    if (this.state !== 'running' || offsetBytes % blockBytes !== 0 || target.length % blockBytes !== 0) return null;
    const first = offsetBytes / blockBytes;
    const end = first + target.length / blockBytes;
    if (end * blockBytes > this.sizeBytes) return null; // a short last block
    const ram = this.ram;
    const blocks = end - first;
    if (this.hitSlotsScratch.length < blocks) this.hitSlotsScratch = new Int32Array(blocks);
    const slots = this.hitSlotsScratch;
    for (let block = first; block < end; block++) {
      const slot = this.index.get(block);
      if (slot < 0 || !this.table.has(slot, VALID)) return null;
      if (ram !== null && ram.lookup(block) >= 0) return null;
      slots[block - first] = slot;
    }
    // Other shared ranges may overlap; a block with an entry (an exclusive holder or a waiter) may not.
    if (!this.locks.rangeAvailable(first, end)) return null;
    // Runs of consecutive slots as [first block's index in the read, its slot] pairs (usually one run).
    const runs: number[] = [];
    for (let i = 0; i < blocks; i++) if (i === 0 || slots[i] !== slots[i - 1]! + 1) runs.push(i, slots[i]!);
    // The shared range keeps every block in its slot until released (eviction and writes need the block exclusively).
    return this.readHitRun(target, first, blocks, runs, this.locks.acquireRange(first, end));
  }

  /** Reads `blocks` blocks from `first`, laid out in `runs` (pairs: index in the read, slot). */
  private async readHitRun(target: Buffer, first: number, blocks: number, runs: number[], range: HeldRange): Promise<boolean> {
    const blockBytes = this.blockBytes;
    try {
      const reads: Promise<void>[] = [];
      for (let r = 0; r < runs.length; r += 2) {
        const start = runs[r]!;
        const stop = r + 2 < runs.length ? runs[r + 2]! : blocks;
        // Not cacheRead: a failure here is not counted; the per-block path redoes the read and counts it.
        reads.push(this.cacheDevice.read(target.subarray(start * blockBytes, stop * blockBytes), this.slotOffset(runs[r + 1]!)));
      }
      const results = await Promise.allSettled(reads);
      if (results.some((result) => result.status === 'rejected')) return false;
      // Spot-checked at both ends (a lookup per block would cost what the saved lookups saved).
      const lastRun = runs.length - 2;
      assert(this.index.get(first) === runs[1] && this.index.get(first + blocks - 1) === runs[lastRun + 1]! + (blocks - 1 - runs[lastRun]!),
        'a block moved while a shared range held it');
      for (let r = 0; r < runs.length; r += 2) {
        const stop = r + 2 < runs.length ? runs[r + 2]! : blocks;
        for (let i = runs[r]!, slot = runs[r + 1]!; i < stop; i++, slot++) this.countSsdHit(slot);
      }
      // Copies into the RAM tier (a view per block only when there is one to fill).
      if (this.ram !== null) {
        for (let i = 0; i < blocks; i++) this.keepInRam(first + i, 0, target.subarray(i * blockBytes, (i + 1) * blockBytes));
      }
      return true;
    } finally {
      this.locks.releaseRange(range);
    }
  }

  /** Not cached (nor reserved) in either tier, and no one holds or waits for it. */
  private isCold(originBlock: number): boolean {
    return this.index.get(originBlock) < 0 && !this.locks.isBusy(originBlock) && (this.ram === null || this.ram.lookup(originBlock) < 0);
  }

  /**
   * Readahead on a read miss: when every block the read touches is cold and the
   * cold blocks next to it, within the aligned readahead window, find free
   * slots (never evicting), one origin read fetches them all; the read is
   * answered from it and every block is cached clean. Null (nothing done) when
   * readahead is off, the read is larger than the window, a block it touches is
   * not cold, the device's short last block is involved, or no neighbour would
   * be fetched: the ordinary paths own those. Locks and slots are taken before
   * this returns (requests keep their arrival order). If the larger origin read
   * fails, the read is retried alone through the per-block path, so a bad
   * neighbour never fails a read of good blocks.
   */
  private readAhead(target: Buffer, offsetBytes: number): Promise<void> | null {
    const blockBytes = this.blockBytes;
    const window = Math.floor(this.readaheadBytes / blockBytes);
    if (window <= 1 || this.state !== 'running' || target.length === 0) return null;
    const requestFirst = Math.floor(offsetBytes / blockBytes);
    const requestEnd = Math.ceil((offsetBytes + target.length) / blockBytes);
    const wholeBlocks = Math.floor(this.sizeBytes / blockBytes);
    if (requestEnd - requestFirst > window || requestEnd > wholeBlocks) return null;
    for (let block = requestFirst; block < requestEnd; block++) if (!this.isCold(block)) return null;
    const windowStart = requestFirst - (requestFirst % window);
    const windowEnd = Math.max(requestEnd, Math.min(windowStart + window, wholeBlocks));
    // Free slots the extension may take, per set (a window spans at most a few sets).
    const taken = new Map<number, number>();
    const canTake = (block: number): boolean => {
      if (!this.isCold(block)) return false;
      const set = this.mapping.setOf(block);
      const used = taken.get(set) ?? 0;
      if (this.table.freeSlots(set) <= used) return false;
      taken.set(set, used + 1);
      return true;
    };
    // The requested blocks take free slots first (allocate prefers them to evicting).
    for (let block = requestFirst; block < requestEnd; block++) {
      const set = this.mapping.setOf(block);
      const used = taken.get(set) ?? 0;
      if (this.table.freeSlots(set) > used) taken.set(set, used + 1);
    }
    let first = requestFirst;
    while (first > windowStart && canTake(first - 1)) first--;
    let end = requestEnd;
    while (end < windowEnd && canTake(end)) end++;
    if (first === requestFirst && end === requestEnd) return null;
    const range = this.lockFreeRun(first, end);
    const slots = new Int32Array(end - first);
    for (let block = first; block < end; block++) {
      let slot: number;
      if (block >= requestFirst && block < requestEnd) {
        this.stats.readMisses++;
        slot = this.allocate(block);
        if (slot < 0) this.stats.uncachedReads++;
      } else {
        slot = this.allocateFree(block); // -1 when the policy does not admit it: fetched, not cached
        if (slot >= 0) this.stats.readaheadBlocks++;
      }
      slots[block - first] = slot;
    }
    return this.fetchAhead(target, offsetBytes, first, slots, requestFirst, requestEnd, range);
  }

  private async fetchAhead(
    target: Buffer, offsetBytes: number, first: number, slots: Int32Array, requestFirst: number, requestEnd: number, range: HeldRange,
  ): Promise<void> {
    const blockBytes = this.blockBytes;
    const data = Buffer.allocUnsafe(slots.length * blockBytes);
    let fetched = false;
    try {
      await this.fetchIntoSlots(data, first, slots);
      fetched = true;
      const at = offsetBytes - first * blockBytes;
      data.copy(target, 0, at, at + target.length);
      for (let block = requestFirst; block < requestEnd; block++) {
        this.keepInRam(block, 0, data.subarray((block - first) * blockBytes, (block - first + 1) * blockBytes));
      }
    } catch {
      // The wider origin read failed (its slots are given back): retried alone below.
    } finally {
      this.locks.releaseRange(range);
    }
    if (fetched) return;
    // The request alone, block by block (its own errors reach the client).
    this.stats.readaheadFailures++;
    await this.forEachBlock(offsetBytes, target.length, (originBlock, inner, length, at) =>
      this.readBlock(originBlock, inner, target.subarray(at, at + length)));
  }

  /**
   * Reads the blocks [first, first + slots.length) from the origin into `data`
   * and caches them in their reserved slots (writeSlotRuns); on an origin error
   * gives every slot back and rethrows. Caller holds every block's exclusive lock.
   */
  private async fetchIntoSlots(data: Buffer, first: number, slots: Int32Array): Promise<void> {
    try {
      await this.originRead(data, first * this.blockBytes);
    } catch (error) {
      for (const slot of slots) if (slot >= 0) this.abandon(slot);
      throw error;
    }
    await this.writeSlotRuns(data, first, slots, false);
  }

  /**
   * The blocks [first, end) of a whole-block request at `offsetBytes` of
   * `lengthBytes` when it may take a cold-run path: the cache runs, the request
   * covers several whole blocks (not the short last block) and none of them is
   * cached, reserved, in RAM or locked. Then the run's exclusive range is
   * taken (granted at once) and the run returned; otherwise null, nothing taken.
   */
  private lockColdRun(offsetBytes: number, lengthBytes: number): { first: number; end: number; range: HeldRange } | null {
    const blockBytes = this.blockBytes;
    if (this.state !== 'running' || lengthBytes <= blockBytes || offsetBytes % blockBytes !== 0 || lengthBytes % blockBytes !== 0) return null;
    const first = offsetBytes / blockBytes;
    const end = first + lengthBytes / blockBytes;
    if (end * blockBytes > this.sizeBytes) return null; // a short last block
    for (let block = first; block < end; block++) if (!this.isCold(block)) return null;
    return { first, end, range: this.lockFreeRun(first, end) };
  }

  /** Takes one exclusive range over [first, end), whose blocks were each checked free (not busy): granted at once. */
  private lockFreeRun(first: number, end: number): HeldRange {
    return this.locks.acquireRange(first, end, true);
  }

  /**
   * Fast path for a cold sequential read (lockColdRun): every block is allocated
   * at once, the origin is read once straight into `target` (the reply), and the
   * cache is written from it (writeSlotRuns). Blocks the policy does not admit
   * are served but not cached. Null (nothing done) when the read does not
   * qualify: the per-block path owns every other case. Locks and slots are taken
   * before this returns, so requests keep their arrival order. An origin error
   * fails the read, as on the per-block path; a cache write error only drops
   * that run's slots (the read is served from the origin data).
   */
  private readRunOfMisses(target: Buffer, offsetBytes: number): Promise<void> | null {
    const run = this.lockColdRun(offsetBytes, target.length);
    if (run === null) return null;
    const slots = new Int32Array(run.end - run.first);
    for (let block = run.first; block < run.end; block++) {
      this.stats.readMisses++;
      const slot = this.allocate(block);
      if (slot < 0) this.stats.uncachedReads++;
      slots[block - run.first] = slot;
    }
    return this.fillColdRun(target, run.first, slots, run.range);
  }

  private async fillColdRun(target: Buffer, first: number, slots: Int32Array, range: HeldRange): Promise<void> {
    try {
      await this.fetchIntoSlots(target, first, slots);
    } finally {
      this.locks.releaseRange(range);
    }
  }

  /**
   * Fast path for a cold sequential write in writeback mode (lockColdRun): every
   * block gets a slot at once and the cache is written from `source`
   * (writeSlotRuns); the blocks become dirty. With the RAM tier on, such a write
   * goes to the SSD tier, not into RAM (a stream would only churn the tier).
   * Null (nothing done) when the write does not qualify or a block finds no
   * slot: the per-block path owns those. Locks and slots are taken before this
   * returns, so requests keep their arrival order. A cache write error fails the
   * write (as on the per-block path), its run's slots given back.
   */
  private writeRunOfMisses(source: Buffer, offsetBytes: number): Promise<void> | null {
    if (this.mode !== 'writeback') return null;
    const run = this.lockColdRun(offsetBytes, source.length);
    if (run === null) return null;
    const slots = new Int32Array(run.end - run.first);
    for (let block = run.first; block < run.end; block++) {
      const slot = this.allocate(block);
      if (slot < 0) {
        for (let i = 0; i < block - run.first; i++) this.abandon(slots[i]!);
        this.locks.releaseRange(run.range);
        return null;
      }
      slots[block - run.first] = slot;
    }
    this.stats.writeMisses += run.end - run.first;
    return this.writeColdRun(source, run.first, slots, run.range);
  }

  private async writeColdRun(source: Buffer, first: number, slots: Int32Array, range: HeldRange): Promise<void> {
    try {
      const error = await this.writeSlotRuns(source, first, slots, true);
      if (error !== undefined) throw error;
    } finally {
      this.locks.releaseRange(range);
    }
  }

  /**
   * Fast path for a write of several whole blocks that are all cached on the SSD
   * tier, none locked or reserved and none with a dirty RAM page: one exclusive
   * range over them, one cache write per run of consecutive slots.
   *   writeback    -> clean or dirty blocks; each then marked as writebackHit does (writeHitRun).
   *                   With a RAM tier only writes over RAM_WRITE_BYTES_MAX, not wholly in RAM:
   *                   smaller ones may complete into RAM.
   *   writethrough -> clean blocks only (a dirty one is updated in the cache: the per-block
   *                   path); the origin is written in one call beside the cache writes, and
   *                   each block ends as writethroughHit leaves it (writeThroughHitRun).
   * A clean RAM page of a block is updated after the write (or dropped if it failed), as
   * writeThroughRam does. Null (nothing done, no lock held) when the write does not
   * qualify. Locks are taken before this returns, so requests keep their arrival order.
   */
  private writeRunOfHits(source: Buffer, offsetBytes: number): Promise<void> | null {
    const blockBytes = this.blockBytes;
    const length = source.length;
    const writeback = this.mode === 'writeback';
    if (this.mode === 'writearound' || this.state !== 'running' || length <= blockBytes) return null;
    if (offsetBytes % blockBytes !== 0 || length % blockBytes !== 0) return null;
    const ram = this.ram;
    if (writeback && ram !== null && length <= RAM_WRITE_BYTES_MAX) return null;
    const first = offsetBytes / blockBytes;
    const end = first + length / blockBytes;
    if (end * blockBytes > this.sizeBytes) return null; // a short last block
    let inRam = 0;
    for (let block = first; block < end; block++) {
      const slot = this.index.get(block);
      if (slot < 0 || !this.table.has(slot, VALID) || (!writeback && this.table.has(slot, DIRTY))) return null;
      if (ram !== null) {
        const page = ram.lookup(block);
        if (page >= 0 && ram.isDirty(page)) return null;
        if (page >= 0) inRam++;
      }
    }
    // Data wholly in RAM is rewritten faster there in writeback (writeNow, or block by block when it declined).
    if ((writeback && inRam === end - first) || !this.locks.rangeAvailable(first, end, true)) return null;
    const range = this.lockFreeRun(first, end);
    const slots = new Int32Array(end - first);
    for (let block = first; block < end; block++) slots[block - first] = this.index.get(block);
    this.stats.writeHits += end - first;
    return writeback ? this.writeHitRun(source, first, slots, range) : this.writeThroughHitRun(source, first, slots, range);
  }

  private async writeHitRun(source: Buffer, first: number, slots: Int32Array, range: HeldRange): Promise<void> {
    const blockBytes = this.blockBytes;
    const count = slots.length;
    try {
      for (let i = 0; i < count; i++) this.policy.hit(slots[i]!, WRITE_ACCESS);
      const { runs, results } = await this.writeRunsOfSlots(source, slots);
      const ram = this.ram;
      let failure: unknown;
      for (let w = 0; w < results.length; w++) {
        const result = results[w]!;
        if (result.status === 'rejected') failure ??= result.reason;
        for (let i = runs[2 * w]!; i < runs[2 * w + 1]!; i++) {
          assert(this.index.get(first + i) === slots[i], 'a block moved while its write held it');
          if (result.status === 'fulfilled') this.markRewritten(slots[i]!);
          if (ram === null) continue;
          // The tiers below may hold old, new or mixed bytes after a failure: never serve a guess.
          if (result.status === 'rejected') ram.drop(first + i);
          else {
            const page = ram.lookup(first + i);
            if (page >= 0) ram.copyIn(page, 0, source, i * blockBytes, blockBytes);
          }
        }
      }
      if (failure !== undefined) throw failure;
    } finally {
      this.locks.releaseRange(range);
    }
  }

  /**
   * writethroughHit for a run of clean cached blocks (caller holds their range): the
   * records say "no checksum" until both copies hold the data; the origin is written in
   * one call while the cache runs are written. If the origin write fails, every block is
   * dropped from both tiers and the write fails. A block whose cache run failed is dropped
   * from the SSD tier (the origin has the data, so a RAM copy is updated); the others get
   * their checksums. Clean RAM copies are updated as in writeThroughRam.
   */
  private async writeThroughHitRun(source: Buffer, first: number, slots: Int32Array, range: HeldRange): Promise<void> {
    const blockBytes = this.blockBytes;
    const count = slots.length;
    try {
      for (let i = 0; i < count; i++) {
        const slot = slots[i]!;
        this.policy.hit(slot, WRITE_ACCESS);
        this.table.state[slot]! &= ~HAS_CRC;
        this.table.markPending(slot);
      }
      const cacheDone = this.writeRunsOfSlots(source, slots);
      let originFailed = false;
      let originError: unknown;
      try {
        await this.originWrite(source, first * blockBytes);
      } catch (error) {
        originFailed = true;
        originError = error;
      }
      const { runs, results } = await cacheDone;
      const ram = this.ram;
      for (let w = 0; w < results.length; w++) {
        const written = results[w]!.status === 'fulfilled';
        for (let i = runs[2 * w]!; i < runs[2 * w + 1]!; i++) {
          const slot = slots[i]!;
          assert(this.index.get(first + i) === slot, 'a block moved while its write held it');
          if (originFailed || !written) this.invalidate(slot); // never serve the stale copy
          else {
            this.table.state[slot]! |= HAS_CRC;
            this.table.setCrc(slot, crc32c(source.subarray(i * blockBytes, (i + 1) * blockBytes)));
            this.table.markPending(slot);
          }
          if (ram === null) continue;
          // The origin may hold old, new or mixed bytes after its failure: never serve a guess.
          if (originFailed) ram.drop(first + i);
          else {
            const page = ram.lookup(first + i);
            if (page >= 0) ram.copyIn(page, 0, source, i * blockBytes, blockBytes);
          }
        }
      }
      if (originFailed) throw originError;
    } finally {
      this.locks.releaseRange(range);
    }
  }

  /**
   * Writes the whole blocks of `data` (block i for origin block first + i) to
   * their reserved slots `slots[i]` (-1: not cached), one cache write per run of
   * consecutive slots, then completes each written slot (dirty, or clean with
   * its checksum; not kept in RAM) and gives back the slots of a failed write.
   * Returns the first write error, if any. Caller holds every block's exclusive lock.
   */
  private async writeSlotRuns(data: Buffer, first: number, slots: Int32Array, dirty: boolean): Promise<unknown> {
    const blockBytes = this.blockBytes;
    const { runs, results } = await this.writeRunsOfSlots(data, slots);
    let failure: unknown;
    for (let w = 0; w < results.length; w++) {
      const result = results[w]!;
      for (let i = runs[2 * w]!; i < runs[2 * w + 1]!; i++) {
        if (result.status === 'rejected') {
          this.abandon(slots[i]!);
          continue;
        }
        if (dirty) {
          this.complete(slots[i]!, true, 0, WRITE_ACCESS);
          continue;
        }
        this.complete(slots[i]!, false, crc32c(data.subarray(i * blockBytes, (i + 1) * blockBytes)), READ_ACCESS);
      }
      if (result.status === 'rejected') failure ??= result.reason;
    }
    return failure;
  }

  /**
   * Writes block i of `data` to slot `slots[i]` (-1: skipped), one cache write per run of
   * consecutive slots. `runs` holds each write's [start, end) in blocks, `results` its outcome.
   */
  private async writeRunsOfSlots(data: Buffer, slots: Int32Array): Promise<{ runs: number[]; results: PromiseSettledResult<void>[] }> {
    const blockBytes = this.blockBytes;
    const count = slots.length;
    const writes: Promise<void>[] = [];
    const runs: number[] = [];
    for (let i = 0; i < count;) {
      const slot = slots[i]!;
      let runEnd = i + 1;
      if (slot >= 0) {
        while (runEnd < count && slots[runEnd] === slot + (runEnd - i)) runEnd++;
        runs.push(i, runEnd);
        writes.push(this.cacheWrite(data.subarray(i * blockBytes, runEnd * blockBytes), this.slotOffset(slot)));
      }
      i = runEnd;
    }
    return { runs, results: await Promise.allSettled(writes) };
  }

  private async readBlock(originBlock: number, inner: number, target: Buffer, bypass = false): Promise<void> {
    if (this.readRam(originBlock, inner, target)) return;
    const wait = this.locks.acquire(originBlock, false);
    if (wait) await wait;
    // While we waited, a write may have completed into RAM: its page is newer than the SSD tier.
    if (this.readRam(originBlock, inner, target)) {
      this.locks.release(originBlock, false);
      return;
    }
    let slot = this.index.get(originBlock);
    if (slot >= 0 && this.table.has(slot, VALID)) {
      try {
        await this.readHit(slot, originBlock, inner, target, false);
      } finally {
        this.locks.release(originBlock, false);
      }
      return;
    }
    this.locks.release(originBlock, false);
    const waitExclusive = this.locks.acquire(originBlock, true);
    if (waitExclusive) await waitExclusive;
    try {
      if (this.readRam(originBlock, inner, target)) return;
      slot = this.index.get(originBlock);
      if (slot >= 0 && this.table.has(slot, VALID)) {
        await this.readHit(slot, originBlock, inner, target, true);
        return;
      }
      this.stats.readMisses++;
      // A bypassed read is served from the origin only for a block not in the cache (checked
      // under its exclusive lock above), so it can never return data older than a cached copy.
      if (bypass) this.stats.sequentialBypassReads++;
      slot = bypass ? -1 : this.allocate(originBlock);
      if (slot < 0) {
        this.stats.uncachedReads++;
        await this.originRead(target, originBlock * this.blockBytes + inner);
        if (!bypass) this.keepInRam(originBlock, inner, target);
        return;
      }
      await this.fill(slot, originBlock, (block) => block.copy(target, 0, inner, inner + target.length));
    } finally {
      this.locks.release(originBlock, true);
    }
  }

  /** A read served by the SSD tier's copy in `slot`: counted, and told to the policy. */
  private countSsdHit(slot: number): void {
    this.stats.readHits++;
    this.policy.hit(slot, READ_ACCESS);
  }

  /**
   * Serves a cached block. A clean copy that cannot be read (or any clean copy
   * while degraded) is served from the origin and the copy dropped; a dirty copy
   * is the only one, so its read error reaches the client (EIO), never stale data.
   */
  private async readHit(slot: number, originBlock: number, inner: number, target: Buffer, exclusive: boolean): Promise<void> {
    this.countSsdHit(slot);
    const dirty = this.table.has(slot, DIRTY);
    if (this.state === 'degraded' && !dirty) {
      this.stats.degradedReads++;
      await this.originRead(target, originBlock * this.blockBytes + inner);
      return;
    }
    try {
      const length = this.blockLength(originBlock);
      if (this.ram === null || (inner === 0 && target.length === length)) {
        await this.cacheRead(target, this.slotOffset(slot) + inner);
        this.keepInRam(originBlock, inner, target);
      } else {
        // A partial read of a block: read it whole, so RAM can keep it.
        const block = this.pool.take();
        try {
          await this.cacheRead(block.subarray(0, length), this.slotOffset(slot));
          block.copy(target, 0, inner, inner + target.length);
          this.keepInRam(originBlock, 0, block.subarray(0, length));
        } finally {
          this.pool.give(block);
        }
      }
    } catch (error) {
      if (dirty) throw error;
      if (exclusive) this.invalidate(slot);
      else void this.dropCleanCopy(originBlock).catch(() => {});
      await this.originRead(target, originBlock * this.blockBytes + inner);
    }
  }

  /**
   * Reads a whole block from the origin into the reserved slot, hands it to
   * `use` (to copy out what a request needs), and writes it to the cache.
   * Caller holds the block's exclusive lock.
   */
  private async fill(slot: number, originBlock: number, use?: (block: Buffer) => void): Promise<void> {
    const block = this.pool.take();
    try {
      await this.readWholeBlock(slot, originBlock, block);
      use?.(block);
      this.keepInRam(originBlock, 0, block);
      try {
        await this.cacheWrite(block, this.slotOffset(slot));
      } catch {
        this.abandon(slot); // the request is served from the origin data already read
        return;
      }
      this.complete(slot, false, crc32c(block), READ_ACCESS);
    } finally {
      this.pool.give(block);
    }
  }

  private async prefetchBlock(originBlock: number): Promise<void> {
    const wait = this.locks.acquire(originBlock, true);
    if (wait) await wait;
    try {
      if (this.index.get(originBlock) >= 0) return;
      const slot = this.allocate(originBlock);
      if (slot >= 0) await this.fill(slot, originBlock);
    } finally {
      this.locks.release(originBlock, true);
    }
  }

  private async writeBlock(originBlock: number, inner: number, data: Buffer, bypass = false, fua = false, allocateRam = true): Promise<void> {
    const wait = this.locks.acquire(originBlock, true);
    if (wait) await wait;
    try {
      if (this.isCached(originBlock)) this.stats.writeHits++;
      else this.stats.writeMisses++;
      if (this.ram === null) await this.writeBelowRam(originBlock, inner, data, bypass);
      else await this.writeThroughRam(this.ram, originBlock, inner, data, bypass, fua, allocateRam);
    } finally {
      this.locks.release(originBlock, true);
    }
  }

  /**
   * A write with the RAM tier on (caller holds the block's exclusive lock):
   *   writeback, not FUA, not bypassed, room  -> completes into a dirty page (a block with no page
   *                                              takes one only if `allocate`: the request is at
   *                                              most RAM_WRITE_BYTES_MAX, as in writeNow);
   *   the block has a dirty page              -> the write is applied to it and the whole page pushed down;
   *   the block has a clean page              -> written below, then the page updated (dropped on failure);
   *   no page                                 -> written below.
   */
  private async writeThroughRam(ram: RamTier, originBlock: number, inner: number, data: Buffer, bypass: boolean, fua: boolean, allocate: boolean): Promise<void> {
    let page = ram.lookup(originBlock);
    const absorb = this.ramAbsorb && this.mode === 'writeback' && this.state === 'running' && !bypass && !fua;
    if (absorb && (page >= 0 ? ram.isDirty(page) || ram.dirtyCount < ram.dirtyMax
      : allocate && inner === 0 && data.length === this.blockLength(originBlock) && ram.dirtyCount < ram.dirtyMax)) {
      if (page < 0) page = ram.allocate(originBlock);
      if (page >= 0) {
        this.absorb(ram, page, inner, data, 0, data.length, this.time.now());
        this.ramWriter.noteDirty();
        return;
      }
    }
    if (page >= 0 && ram.isDirty(page)) {
      // The page holds bytes newer than the tiers below: apply the write to it, push it whole.
      page = ram.copyIn(page, inner, data, 0, data.length);
      await this.pushPage(ram, page, originBlock, bypass);
      return;
    }
    try {
      await this.writeBelowRam(originBlock, inner, data, bypass);
    } catch (error) {
      ram.drop(originBlock); // the tiers below may hold old, new or mixed bytes: never serve a guess
      throw error;
    }
    // A clean page may have been evicted meanwhile, never replaced (we hold the lock).
    page = ram.lookup(originBlock);
    if (page >= 0) ram.copyIn(page, inner, data, 0, data.length);
  }

  /** Pushes a block's dirty RAM page down to the SSD tier (the RAM writer; flushes). */
  async pushRamBlock(originBlock: number): Promise<void> {
    const wait = this.locks.acquire(originBlock, true);
    if (wait) await wait;
    try {
      const ram = this.ram;
      const page = ram === null ? -1 : ram.lookup(originBlock);
      if (page >= 0 && ram!.isDirty(page)) await this.pushPage(ram!, page, originBlock, false);
    } finally {
      this.locks.release(originBlock, true);
    }
    if (this.mode === 'writeback') this.cleaner.noteDirty(); // the SSD tier's dirty share grew
  }

  /** A write (or part of one) completes into `page`, which becomes dirty; the caller checked the dirty bound. */
  private absorb(ram: RamTier, page: number, inner: number, source: Buffer, from: number, length: number, now: number): void {
    ram.markDirty(ram.copyIn(page, inner, source, from, length), now);
    this.ramStats.writeAbsorbs++;
  }

  /** Writes a dirty page whole to the tiers below, then marks it clean (caller holds the block's exclusive lock). */
  private async pushPage(ram: RamTier, page: number, originBlock: number, bypass: boolean): Promise<void> {
    await this.writeBelowRam(originBlock, 0, ram.view(page, this.blockLength(originBlock)), bypass);
    ram.markClean(page);
  }

  /** The SSD tier's write path (caller holds the block's exclusive lock). */
  private async writeBelowRam(originBlock: number, inner: number, data: Buffer, bypass: boolean): Promise<void> {
    const slot = this.index.get(originBlock);
    if (slot >= 0 && this.table.has(slot, DIRTY)) {
      // A dirty copy is newer than the origin in its other bytes: it is updated in the cache
      // in every mode. A switch away from writeback may still be cleaning (setMode), and a
      // bypassed write must never leave a stale dirty copy behind.
      await this.writebackHit(slot, inner, data);
      return;
    }
    if (bypass || this.state === 'degraded') {
      // Around the cache, as in writearound: the clean copy is dropped, the origin written
      // through originWrite (intent first, so recovery distrusts clean copies after a crash).
      // A degraded cache takes no new data either.
      if (bypass) this.stats.sequentialBypassWrites++;
      if (slot >= 0) this.invalidate(slot);
      await this.originWrite(data, originBlock * this.blockBytes + inner);
      return;
    }
    switch (this.mode) {
      case 'writeback':
        await (slot >= 0 ? this.writebackHit(slot, inner, data) : this.writebackMiss(originBlock, inner, data));
        break;
      case 'writethrough':
        await (slot >= 0 ? this.writethroughHit(slot, originBlock, inner, data) : this.writethroughMiss(originBlock, inner, data));
        break;
      case 'writearound':
        if (slot >= 0) this.invalidate(slot);
        await this.originWrite(data, originBlock * this.blockBytes + inner);
        break;
    }
  }

  private async writebackHit(slot: number, inner: number, data: Buffer): Promise<void> {
    assert(this.table.has(slot, VALID));
    this.policy.hit(slot, WRITE_ACCESS);
    await this.cacheWrite(data, this.slotOffset(slot) + inner);
    this.markRewritten(slot);
  }

  /** A writeback write replaced the slot's data: it is dirty, with a record pending unless a staged one says so. */
  private markRewritten(slot: number): void {
    this.table.state[slot]! &= ~HAS_CRC;
    if (!this.table.has(slot, DIRTY)) this.table.setDirty(slot, true);
    if (!this.table.has(slot, PERSISTED_DIRTY)) this.table.markPending(slot);
  }

  private async writebackMiss(originBlock: number, inner: number, data: Buffer): Promise<void> {
    const slot = this.allocate(originBlock);
    if (slot < 0) {
      this.stats.uncachedWrites++;
      await this.originWrite(data, originBlock * this.blockBytes + inner);
      return;
    }
    if (data.length === this.blockBytes) {
      await this.cacheWriteOrAbandon(slot, data);
      this.complete(slot, true, 0, WRITE_ACCESS);
      return;
    }
    // A partial block: pad from the origin (dm-cache's do_fetch) so the slot holds a whole block.
    const block = this.pool.take();
    try {
      await this.readWholeBlock(slot, originBlock, block);
      data.copy(block, inner);
      await this.cacheWriteOrAbandon(slot, block);
      this.complete(slot, true, 0, WRITE_ACCESS);
    } finally {
      this.pool.give(block);
    }
  }

  private async writethroughHit(slot: number, originBlock: number, inner: number, data: Buffer): Promise<void> {
    assert(this.table.has(slot, VALID) && !this.table.has(slot, DIRTY));
    this.policy.hit(slot, WRITE_ACCESS);
    const block = this.pool.take();
    try {
      if (data.length === this.blockBytes) data.copy(block);
      else {
        await this.cacheRead(block, this.slotOffset(slot));
        data.copy(block, inner);
      }
      const crc = crc32c(block);
      this.table.state[slot]! &= ~HAS_CRC;
      this.table.markPending(slot);
      const cacheDone = this.cacheWrite(data, this.slotOffset(slot) + inner).then(() => true, () => false);
      try {
        await this.originWrite(data, originBlock * this.blockBytes + inner);
      } catch (error) {
        // The origin kept its old data (or some of the new): the cached copy must not claim either.
        await cacheDone;
        this.invalidate(slot);
        throw error;
      }
      if (await cacheDone) {
        this.table.state[slot]! |= HAS_CRC;
        this.table.setCrc(slot, crc);
        this.table.markPending(slot);
      } else {
        this.invalidate(slot); // the origin has the data; never serve the stale copy
      }
    } finally {
      this.pool.give(block);
    }
  }

  private async writethroughMiss(originBlock: number, inner: number, data: Buffer): Promise<void> {
    // Only whole blocks are allocated: a partial miss would need a read from the origin.
    const slot = data.length === this.blockBytes ? this.allocate(originBlock) : -1;
    if (slot < 0) {
      this.stats.uncachedWrites++;
      await this.originWrite(data, originBlock * this.blockBytes + inner);
      return;
    }
    const cacheDone = this.cacheWrite(data, this.slotOffset(slot)).then(() => true, () => false);
    try {
      await this.originWrite(data, originBlock * this.blockBytes);
    } catch (error) {
      await cacheDone;
      this.abandon(slot);
      throw error;
    }
    if (await cacheDone) this.complete(slot, false, crc32c(data), WRITE_ACCESS);
    else this.abandon(slot);
  }

  /** Reads a whole block from the origin (zero-padded past the device end); abandons the reserved slot on failure. */
  private async readWholeBlock(slot: number, originBlock: number, block: Buffer): Promise<void> {
    const length = this.blockLength(originBlock);
    try {
      await this.originRead(block.subarray(0, length), originBlock * this.blockBytes);
    } catch (error) {
      this.abandon(slot);
      throw error;
    }
    if (length < this.blockBytes) block.fill(0, length);
  }

  private async cacheWriteOrAbandon(slot: number, block: Buffer): Promise<void> {
    try {
      await this.cacheWrite(block, this.slotOffset(slot));
    } catch (error) {
      this.abandon(slot);
      throw error;
    }
  }

  // ---- slot state transitions ---------------------------------------------------

  private isEvictable(slot: number): boolean {
    const state = this.table.state[slot]!;
    return (state & (VALID | DIRTY | DIRTY_ON_DISK | RESERVED)) === VALID && !this.locks.isBusy(this.table.originOf[slot]!);
  }

  /**
   * Finds a slot for `originBlock` (caller holds its exclusive lock): a free one
   * of its set, or a clean victim the policy picks. Returns -1 when the policy
   * does not admit the block or every block of the set is busy or dirty.
   */
  private allocate(originBlock: number): number {
    if (this.state === 'degraded') return -1;
    const set = this.mapping.setOf(originBlock);
    if (!this.policy.admit(set, originBlock)) return -1;
    let slot = this.table.popFree(set);
    if (slot < 0) {
      const victim = this.policy.victim(set, originBlock, this.evictableCheck);
      if (victim === NO_BLOCK) {
        this.stats.noRoom++;
        this.cleaner.noteNoRoom(set);
        return -1;
      }
      assert(this.isEvictable(victim), 'policy chose a victim that is not evictable');
      this.index.delete(this.table.originOf[victim]!);
      this.policy.remove(victim, true);
      this.table.state[victim]! &= ~(VALID | HAS_CRC);
      this.table.validCount--;
      this.stats.evictions++;
      slot = victim;
    }
    return this.reserve(slot, originBlock);
  }

  /**
   * A free slot of the block's set for it, never an eviction (readahead); -1 when the set is
   * full or the policy does not admit the block (every insert follows an admit: ARC's ghosts).
   */
  private allocateFree(originBlock: number): number {
    if (this.state === 'degraded') return -1;
    const set = this.mapping.setOf(originBlock);
    if (this.table.freeSlots(set) === 0 || !this.policy.admit(set, originBlock)) return -1;
    return this.reserve(this.table.popFree(set), originBlock);
  }

  /** Makes `slot` RESERVED for `originBlock` and indexes it (caller holds the block's exclusive lock). */
  private reserve(slot: number, originBlock: number): number {
    assert((this.table.state[slot]! & (VALID | RESERVED | DIRTY | DIRTY_ON_DISK)) === 0, 'allocating a slot in use');
    this.table.originOf[slot] = originBlock;
    this.table.state[slot]! |= RESERVED;
    this.index.insert(originBlock, slot);
    return slot;
  }

  /** A reserved slot's data is written: it becomes valid (dirty in writeback). */
  private complete(slot: number, dirty: boolean, crc: number, context: AccessContext): void {
    assert(this.table.has(slot, RESERVED));
    this.table.state[slot]! = (this.table.state[slot]! & ~RESERVED) | VALID;
    if (dirty) this.table.setDirty(slot, true);
    else {
      this.table.state[slot]! |= HAS_CRC;
      this.table.setCrc(slot, crc);
    }
    this.table.validCount++;
    this.table.markPending(slot);
    this.policy.insert(slot, this.table.originOf[slot]!, context);
    if (this.table.pendingRecords >= PENDING_RECORDS_MAX) void this.commit().catch(() => {});
  }

  /** A reserved slot could not be filled: give it back. */
  private abandon(slot: number): void {
    assert(this.table.has(slot, RESERVED));
    this.index.delete(this.table.originOf[slot]!);
    this.table.state[slot]! &= ~RESERVED;
    this.table.pushFree(slot);
  }

  /** Drops a valid slot's block (trim, write-around, errors). Caller holds its lock. */
  invalidate(slot: number): void {
    assert(this.table.has(slot, VALID));
    this.index.delete(this.table.originOf[slot]!);
    this.policy.remove(slot, false);
    if (this.table.has(slot, DIRTY)) this.table.setDirty(slot, false);
    this.table.state[slot]! &= ~(VALID | HAS_CRC);
    this.table.validCount--;
    this.stats.invalidations++;
    this.table.markPending(slot);
    if (this.table.has(slot, DIRTY_ON_DISK)) this.table.deferFree(slot);
    else this.table.pushFree(slot);
  }

  private async invalidateRange(firstBlock: number, endBlock: number, zeroDirty = false): Promise<void> {
    // Walk the cached blocks rather than the range: TRIMs can cover the whole device.
    if (endBlock - firstBlock > this.index.size) {
      const victims: number[] = this.ram?.residentIn(firstBlock, endBlock) ?? [];
      for (let slot = 0; slot < this.mapping.cacheBlocks; slot++) {
        const originBlock = this.table.originOf[slot]!;
        if (this.table.has(slot, VALID | RESERVED) && originBlock >= firstBlock && originBlock < endBlock) victims.push(originBlock);
      }
      for (const originBlock of victims) await this.invalidateBlock(originBlock, zeroDirty);
      return;
    }
    for (let originBlock = firstBlock; originBlock < endBlock; originBlock++) {
      if (this.index.get(originBlock) >= 0 || this.locks.isBusy(originBlock) || (this.ram !== null && this.ram.lookup(originBlock) >= 0)) {
        await this.invalidateBlock(originBlock, zeroDirty);
      }
    }
  }

  /** Drops a block's cached copy if it is (still) clean: used after its cache read failed. */
  private async dropCleanCopy(originBlock: number): Promise<void> {
    const wait = this.locks.acquire(originBlock, true);
    if (wait) await wait;
    try {
      const slot = this.index.get(originBlock);
      if (slot >= 0 && this.table.has(slot, VALID) && !this.table.has(slot, DIRTY)) this.invalidate(slot);
    } finally {
      this.locks.release(originBlock, true);
    }
  }

  /** Drops the block's cached copies; with `zeroDirty`, a dirty SSD copy is instead overwritten with zeroes and stays dirty. */
  private async invalidateBlock(originBlock: number, zeroDirty: boolean): Promise<void> {
    const wait = this.locks.acquire(originBlock, true);
    if (wait) await wait;
    try {
      // The RAM copy goes first: the block's content is being replaced below. With `zeroDirty`
      // (write-zeroes) a dirty page is zeroed in place and stays dirty instead: it may be the only
      // copy newer than the origin, and a read while the origin is being zeroed (the blocks are
      // not locked then) must see the old data or zeroes, never the origin's older data (found
      // by the crash simulator, seed 18091).
      const ram = this.ram;
      const page = ram === null ? -1 : ram.lookup(originBlock);
      if (zeroDirty && page >= 0 && ram!.isDirty(page)) {
        const length = this.blockLength(originBlock);
        ram!.copyIn(page, 0, this.zeroes(length), 0, length);
      } else ram?.drop(originBlock);
      const slot = this.index.get(originBlock);
      if (slot >= 0 && this.table.has(slot, VALID)) {
        if (zeroDirty && this.table.has(slot, DIRTY)) await this.writebackHit(slot, 0, this.zeroes(this.blockLength(originBlock)));
        else this.invalidate(slot);
      }
    } finally {
      this.locks.release(originBlock, true);
    }
  }

  // ---- commits -----------------------------------------------------------------------

  /**
   * Makes every completed write durable: flush data on both devices, write the
   * changed metadata records and the superblock, flush the cache device.
   * Concurrent callers share commits (group commit); a caller arriving during a
   * commit waits for the next one, which starts after it.
   */
  commit(): Promise<void> {
    if (!this.commitRunning) {
      this.commitRunning = this.commitOnce().finally(() => (this.commitRunning = undefined));
      return this.commitRunning;
    }
    this.commitQueued ??= this.commitRunning.catch(() => {}).then(() => {
      this.commitQueued = undefined;
      return this.commit();
    });
    return this.commitQueued;
  }

  private async commitOnce(): Promise<void> {
    const superblock = this.store.superblock;
    const sequence = superblock.commitSequence + 1;
    const stagedClean: number[] = [];
    const staged: number[] = [];
    // Stage synchronously: records describe exactly the state at this instant.
    this.table.drainPending((slot) => {
      if (this.table.has(slot, RESERVED)) return; // data not written yet: its completion re-marks it
      const dirty = this.stageRecord(slot, sequence);
      staged.push(slot);
      if (dirty) this.table.state[slot]! |= PERSISTED_DIRTY | DIRTY_ON_DISK;
      else {
        this.table.state[slot]! &= ~PERSISTED_DIRTY;
        stagedClean.push(slot);
      }
    });
    try {
      await this.writeCommit(sequence, stagedClean);
    } catch (error) {
      // Nothing staged may be assumed durable: stage it again next time (DIRTY_ON_DISK stays, conservatively).
      for (const slot of staged) {
        this.table.state[slot]! &= ~PERSISTED_DIRTY;
        this.table.markPending(slot);
      }
      throw error;
    }
  }

  /** The I/O of a commit whose records are staged: data flushes, records, superblock, flush. */
  private async writeCommit(sequence: number, stagedClean: number[]): Promise<void> {
    const epoch = this.originEpoch;
    const originCompleted = this.originWritesCompleted;
    // The intent may be cleared only if every origin operation started so far is covered by this flush:
    // none in flight when it is issued, none started before it resolves.
    const originQuiet = this.originWritesInflight === 0;
    const flushOrigin = originCompleted !== this.originWritesFlushed;
    await Promise.all([this.cacheDevice.flush(), flushOrigin ? this.origin.flush() : undefined]);
    if (flushOrigin) this.originWritesFlushed = Math.max(this.originWritesFlushed, originCompleted);
    const clearIntent = this.intent === 'set' && originQuiet && this.originEpoch === epoch;
    if (clearIntent) this.intent = 'clear';
    const { deferredBlocks } = await this.store.writeStaged();
    if (deferredBlocks.length > 0) this.deferRecords(deferredBlocks);
    else if (this.recordsDeferred > 0) {
      this.recordsDeferred = 0;
      this.log('the deferred metadata records are written');
    }
    // Clearing "origin writes uncommitted" tells recovery to trust clean records again, so the
    // records staged above (e.g. the invalidation of a block trimmed or zeroed on the origin)
    // must be durable before a superblock saying so can be: without this flush a crash could
    // keep the new superblock and lose the record page, and recovery would serve the block's
    // old clean copy over the origin's new content (crash simulator, seed 29 with a RAM tier).
    if (this.intent === 'clear' && this.store.superblock.originWritesUncommitted) await this.cacheDevice.flush();
    await this.writeSuperblock({ commitSequence: sequence, originWritesUncommitted: this.intent !== 'clear' });
    await this.cacheDevice.flush();
    // Commits are serialised, so nothing was staged since: the clean records are now the latest on disk
    // (and their checksums, which leave memory unless the slot changed again since staging).
    for (const slot of stagedClean) {
      if (!this.table.has(slot, PERSISTED_DIRTY)) this.table.state[slot]! &= ~DIRTY_ON_DISK;
      this.table.forgetCrc(slot);
    }
    this.table.releaseDeferred();
    this.stats.commits++;
  }

  /**
   * Stages the record of a slot's current state (no record object: a commit may stage a million); true if it says dirty.
   * A record that does not say dirty, replacing one that cannot say dirty either, may be deferred by the store.
   */
  private stageRecord(slot: number, sequence: number): boolean {
    const state = this.table.state[slot]!;
    const valid = (state & VALID) !== 0;
    const dirty = valid && (state & DIRTY) !== 0;
    const hasCrc = valid && !dirty && (state & HAS_CRC) !== 0;
    const deferrable = !dirty && (state & DIRTY_ON_DISK) === 0;
    this.store.stageFields(slot, this.table.originOf[slot]!, sequence, hasCrc ? this.table.crcOf(slot) : 0, recordFlags(valid, dirty, hasCrc), deferrable);
    return dirty;
  }

  /**
   * Records whose metadata pages could not be read were not written (none says dirty or replaces
   * a dirty one: the store defers nothing else). Until a commit writes them, recovery must not
   * trust any clean record: the superblock written next says origin writes are uncommitted
   * (recovery then drops clean copies after a crash), and `close` does not mark a clean shutdown.
   */
  private deferRecords(slots: readonly number[]): void {
    if (this.recordsDeferred === 0) this.log(`${slots.length} metadata records could not be written (their pages cannot be read from the cache device); they are retried at the next commit, and until then clean blocks are not trusted after a crash`);
    this.recordsDeferred = slots.length;
    this.stats.recordsDeferred += slots.length;
    this.stats.cacheReadErrors++;
    this.noteCacheError(new Error('metadata pages unreadable'));
    for (const slot of slots) this.table.markPending(slot);
    if (this.intent === 'clear') this.intent = 'set';
  }

  /**
   * Bytes of memory the SSD tier keeps per cache block, summed over its structures: slot table,
   * index, policy and the cleaner's per-set ages (the RAM tier is counted apart: its size is a setting).
   */
  get metadataMemoryBytes(): number {
    return this.table.memoryBytes + this.index.memoryBytes + this.policy.memoryBytes + this.cleaner.memoryBytes;
  }

  /** True when a timer commits changed records every commit interval (not in tests and detach, which pass 0). */
  get commitsPeriodically(): boolean {
    return this.cancelCommitTimer !== undefined;
  }

  /** True while a commit (or a queued one) has not finished: staged records may not be durable yet. */
  get commitInFlight(): boolean {
    return this.commitRunning !== undefined || this.commitQueued !== undefined;
  }

  /**
   * Superblock writes are serialised: each goes to the next copy with a higher sequence.
   * The next write may start only once this one is durable: the two copies protect
   * against a torn write only if the copy not being written is on disk. Without the
   * flush, an intent write chained right after a commit's superblock write left both
   * copies unflushed at once, and a crash could tear both (crash simulator, seed 100398).
   * Callers still flush after the write they wait for; this flush only orders the chain.
   */
  writeSuperblock(changes: Partial<Superblock>): Promise<Superblock> {
    const next = this.superblockChain.then(() => this.store.updateSuperblock(changes));
    this.superblockChain = next.then(() => this.cacheDevice.flush()).catch(() => {});
    return next;
  }

  private periodicCommit(): void {
    if (this.state === 'degraded' && this.errorBudget.value(Date.now()) < ERRORS_TO_RECOVER) {
      this.state = 'running';
      this.log('cache device errors have subsided: caching again');
    }
    if (this.state !== 'running' && this.state !== 'degraded') return;
    if (this.table.pendingRecords === 0 && this.originWritesCompleted === this.originWritesFlushed) return;
    void this.commit().catch((error) => this.log(`periodic commit failed: ${(error as Error).message}`));
  }

  // ---- device I/O -----------------------------------------------------------------------

  private slotOffset(slot: number): number {
    return this.dataOffsetBytes + slot * this.blockBytes;
  }

  private blockLength(originBlock: number): number {
    return Math.min(this.blockBytes, this.sizeBytes - originBlock * this.blockBytes);
  }

  private async cacheRead(target: Buffer, offsetBytes: number): Promise<void> {
    try {
      await this.cacheDevice.read(target, offsetBytes);
    } catch (error) {
      this.stats.cacheReadErrors++;
      this.noteCacheError(error);
      throw error;
    }
  }

  private async cacheWrite(source: Buffer, offsetBytes: number): Promise<void> {
    try {
      await this.cacheDevice.write(source, offsetBytes);
    } catch (error) {
      this.stats.cacheWriteErrors++;
      this.noteCacheError(error);
      throw error;
    }
  }

  /** Counts a cache-device error against the decaying budget; too many degrade the cache. */
  private noteCacheError(error: unknown): void {
    const total = this.errorBudget.note(Date.now());
    if (this.state === 'running' && total > ERRORS_TO_DEGRADE) {
      this.state = 'degraded';
      this.log(`cache device errors (${(error as Error).message}): degraded, clean data is served from the origin`);
    }
  }

  private async originRead(target: Buffer, offsetBytes: number): Promise<void> {
    try {
      await this.origin.read(target, offsetBytes);
    } catch (error) {
      this.stats.originErrors++;
      throw error;
    }
  }

  /** Every origin write outside writeback goes through here: intent first, then the write. */
  private async originWrite(source: Buffer, offsetBytes: number): Promise<void> {
    await this.originOperation(() => this.origin.write(source, offsetBytes));
  }

  /** Writes back a dirty block's data; its dirty record is on disk, so no intent is needed. */
  async writebackWrite(source: Buffer, offsetBytes: number): Promise<void> {
    try {
      await this.origin.write(source, offsetBytes);
    } catch (error) {
      this.stats.originErrors++;
      throw error;
    } finally {
      this.originWritesCompleted++; // a failed write may have landed in part: flush it too
    }
  }

  private async originOperation(operation: () => Promise<void>): Promise<void> {
    this.originEpoch++;
    this.originWritesInflight++;
    try {
      await this.ensureIntent();
      await operation();
    } catch (error) {
      this.stats.originErrors++;
      throw error;
    } finally {
      this.originWritesInflight--;
      this.originWritesCompleted++;
    }
  }

  /** Persists "origin writes uncommitted" before the first origin write after a commit. */
  private ensureIntent(): Promise<void> | undefined {
    if (this.intent === 'set') return undefined;
    if (this.intent === 'setting') return this.intentSetting;
    this.intent = 'setting';
    this.intentSetting = (async () => {
      try {
        await this.writeSuperblock({ originWritesUncommitted: true });
        await this.cacheDevice.flush();
        this.intent = 'set';
      } catch (error) {
        this.intent = 'clear';
        throw error;
      } finally {
        this.intentSetting = undefined;
      }
    })();
    return this.intentSetting;
  }

  // ---- helpers ---------------------------------------------------------------------------

  /** Exposes what the cleaner needs without widening the public API. */
  get internals() {
    return {
      pool: this.pool,
      slotOffset: (slot: number) => this.slotOffset(slot),
      blockLength: (originBlock: number) => this.blockLength(originBlock),
      cacheRead: (target: Buffer, offset: number) => this.cacheRead(target, offset),
      log: this.log,
    };
  }

  private enter(): void {
    if (this.state === 'stopping' || this.state === 'stopped') {
      throw new BlockcacheError('ESHUTDOWN', 'the cache is shutting down');
    }
    this.inflightRequests++;
  }

  private leave(): void {
    this.inflightRequests--;
    if (this.inflightRequests === 0 && this.drained) {
      const resolve = this.drained;
      this.drained = undefined;
      resolve();
    }
  }

  get inflight(): number {
    return this.inflightRequests;
  }

  private coveredBlocks(offsetBytes: number, lengthBytes: number): { first: number; end: number } {
    const first = Math.ceil(offsetBytes / this.blockBytes);
    const endOffset = offsetBytes + lengthBytes;
    // The device's last (partial) block counts as covered when the range reaches the device end.
    const end = endOffset === this.sizeBytes ? Math.ceil(endOffset / this.blockBytes) : Math.floor(endOffset / this.blockBytes);
    return { first, end: Math.max(first, end) };
  }

  private zeroBuffer: Buffer | undefined;
  private zeroes(length: number): Buffer {
    if (!this.zeroBuffer || this.zeroBuffer.length < length) this.zeroBuffer = Buffer.alloc(Math.max(length, this.blockBytes));
    return this.zeroBuffer.subarray(0, length);
  }

  private anyCachedWrite(offsetBytes: number, lengthBytes: number): boolean {
    const first = Math.floor(offsetBytes / this.blockBytes);
    const end = Math.ceil((offsetBytes + lengthBytes) / this.blockBytes);
    // A dirty RAM page is data the origin does not have yet.
    if (this.ram !== null && this.ram.anyDirtyIn(first, end)) return true;
    if (end - first > this.index.size) {
      for (let slot = 0; slot < this.mapping.cacheBlocks; slot++) {
        const originBlock = this.table.originOf[slot]!;
        if (this.table.has(slot, DIRTY | RESERVED) && originBlock >= first && originBlock < end) return true;
      }
      return false;
    }
    for (let block = first; block < end; block++) {
      const slot = this.index.get(block);
      if ((slot >= 0 && this.table.has(slot, DIRTY | RESERVED)) || this.locks.isBusy(block)) return true;
    }
    return false;
  }

  /**
   * Runs `operation` for every cache block the byte range touches, at most
   * REQUEST_BLOCKS_INFLIGHT_MAX at once. `at` is the offset within the request.
   */
  private async forEachBlock(
    offsetBytes: number, lengthBytes: number,
    operation: (originBlock: number, inner: number, length: number, at: number) => Promise<void>,
  ): Promise<void> {
    if (lengthBytes === 0) return;
    const first = Math.floor(offsetBytes / this.blockBytes);
    const last = Math.floor((offsetBytes + lengthBytes - 1) / this.blockBytes);
    if (first === last) return operation(first, offsetBytes - first * this.blockBytes, lengthBytes, 0);
    let running: Promise<void>[] = [];
    for (let block = first; block <= last; block++) {
      const start = Math.max(offsetBytes, block * this.blockBytes);
      const end = Math.min(offsetBytes + lengthBytes, (block + 1) * this.blockBytes);
      running.push(operation(block, start - block * this.blockBytes, end - start, start - offsetBytes));
      if (running.length >= REQUEST_BLOCKS_INFLIGHT_MAX) {
        await Promise.all(running);
        running = [];
      }
    }
    await Promise.all(running);
  }
}

