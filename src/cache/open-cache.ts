// Creating and opening caches: format a cache device for an origin; open one,
// check its origin, recover its mapping (docs/DURABILITY.md, recovery table)
// and hand back a running engine.
import { BlockDevice } from '../devices/block-device.js';
import { computeLayout } from '../format/layout.js';
import { CacheMode, Superblock, fitName } from '../format/superblock.js';
import { MetadataRecord, RECORD_DIRTY, RECORD_VALID, RECORD_DATA_CRC, RECORD_EMPTY, RECORD_FOUND } from '../format/record.js';
import { MetadataStore, RecordChunk, newUuid, readSuperblock } from '../metadata/metadata-store.js';
import { decideRecovery, recordRank, RecordState, RecoveryDecision } from '../metadata/recovery.js';
import { assert } from '../stdx/assert.js';
import { compareIdentity, fingerprintOrigin, OriginLocation } from '../metadata/origin-identity.js';
import { createPolicy, DEFAULT_POLICY } from '../policies/registry.js';
import { BlockcacheError, isBlockcacheError } from '../stdx/errors.js';
import { crc32c } from '../stdx/checksum.js';
import { BlockIndex } from './block-index.js';
import { CacheEngine } from './engine.js';
import { CleanerSettings } from './cleaner.js';
import type { Timebase } from '../stdx/timebase.js';
import { SetMapping } from './set-mapping.js';
import { DIRTY_ON_DISK, PERSISTED_DIRTY, RESERVED, SlotTable, VALID } from './slot-table.js';
import { ASSOC_DEFAULT, BLOCK_BYTES_DEFAULT } from '../constants.js';

export interface CreateOptions {
  readonly cache: BlockDevice;
  readonly origin: BlockDevice;
  readonly originLocation: OriginLocation;
  readonly mode?: CacheMode;
  readonly blockBytes?: number;
  readonly assoc?: number | 'full';
  readonly policy?: string;
  readonly force?: boolean;
  readonly discardDirty?: boolean;
}

/** Formats `cache` for `origin`. Refuses an existing cache unless forced, and dirty data unless discarded. */
export async function createCache(options: CreateOptions): Promise<Superblock> {
  const blockBytes = options.blockBytes ?? BLOCK_BYTES_DEFAULT;
  const layout = computeLayout(options.cache.sizeBytes, blockBytes, options.assoc ?? ASSOC_DEFAULT);
  const policy = options.policy ?? DEFAULT_POLICY;
  createPolicy(policy, { cacheBlocks: 1, assoc: 1 }); // validates the name
  await refuseExisting(options);
  if (options.origin.sizeBytes === 0) throw new BlockcacheError('BAD_ARGUMENT', `origin ${options.origin.name} is empty`);
  const superblock: Superblock = {
    uuid: newUuid(), sequence: 0, commitSequence: 0,
    blockBytes, assoc: layout.assoc, assocFull: layout.assoc === layout.cacheBlocks && options.assoc === 'full',
    cacheBlocks: layout.cacheBlocks, metadataOffsetBytes: layout.metadataOffsetBytes, dataOffsetBytes: layout.dataOffsetBytes,
    cacheDeviceBytes: options.cache.sizeBytes, mode: options.mode ?? 'writethrough', policy,
    cleanShutdown: true, originWritesUncommitted: false,
    origin: {
      sizeBytes: options.origin.sizeBytes, name: fitName(options.originLocation.name),
      deviceId: options.originLocation.deviceId, inode: options.originLocation.inode,
      fingerprint: await fingerprintOrigin(options.origin), fingerprintValid: true,
    },
  };
  const fixed = { ...superblock, assocFull: layout.assoc === layout.cacheBlocks };
  await MetadataStore.format(options.cache, layout, fixed);
  return fixed;
}

async function refuseExisting(options: CreateOptions): Promise<void> {
  let existing: Superblock;
  try {
    existing = (await readSuperblock(options.cache)).superblock;
  } catch (error) {
    if (isBlockcacheError(error, 'NOT_A_CACHE')) return;
    if (isBlockcacheError(error) && options.force && options.discardDirty) return;
    if (isBlockcacheError(error)) {
      throw new BlockcacheError('EXISTS', `${options.cache.name} holds a damaged or newer blockcache superblock (${error.message}); use --force --discard-dirty to overwrite it`);
    }
    throw error;
  }
  if (!options.force) {
    throw new BlockcacheError('EXISTS', `${options.cache.name} already holds a blockcache cache (use --force to overwrite a cache with no dirty data)`);
  }
  if (options.discardDirty) return;
  const dirty = await countDirty(MetadataStore.open(options.cache, existing));
  if (dirty > 0) {
    throw new BlockcacheError('DIRTY_DATA', `${options.cache.name} holds ${dirty} dirty blocks not yet on the origin; run 'blockcache detach' first, or add --discard-dirty to lose them`);
  }
}

async function countDirty(store: MetadataStore): Promise<number> {
  let dirty = 0;
  const record = emptyRecord();
  await store.scan({
    blocksMultiple: 1,
    visit: (chunk) => {
      for (let slot = chunk.firstCacheBlock; slot < chunk.firstCacheBlock + chunk.blockCount; slot++) {
        if (chunk.decode(slot, record) === RECORD_FOUND && (record.flags & RECORD_DIRTY) !== 0) dirty++;
      }
    },
  });
  return dirty;
}

function emptyRecord(): MetadataRecord {
  return { originBlock: 0, sequence: 0, dataCrc: 0, flags: 0 };
}

export interface OpenOptions {
  readonly cache: BlockDevice;
  readonly origin: BlockDevice;
  readonly originLocation: OriginLocation;
  /** The user named the origin explicitly (relocation allowed if its identity matches). */
  readonly relocated?: boolean;
  /** Serve dirty data over an origin whose identity changed. */
  readonly force?: boolean;
  readonly settings?: Partial<CleanerSettings>;
  readonly commitIntervalMs?: number;
  /** RAM tier size (0 or absent = none). */
  readonly ramBytes?: number;
  /** Readahead window on read misses (absent: READAHEAD_BYTES_DEFAULT; 0 = off). */
  readonly readaheadBytes?: number;
  readonly log?: (line: string) => void;
  readonly progress?: (phase: string, done: number, total: number) => void;
  /** Clock and timers of background work (tests, the crash simulator); default real time. */
  readonly time?: Timebase;
}

export interface RecoveryReport {
  readonly cleanShutdown: boolean;
  readonly keptClean: number;
  readonly keptDirty: number;
  readonly freed: number;
  readonly corruptRecords: number;
  readonly damagedSuperblockCopies: number;
  readonly originChanged: boolean;
}

/** Opens a cache: checks the origin, recovers the mapping, marks the cache in use. */
export async function openCache(options: OpenOptions): Promise<{ engine: CacheEngine; report: RecoveryReport }> {
  const { superblock, damagedCopies } = await readSuperblock(options.cache);
  const fingerprint = superblock.origin.fingerprintValid ? await fingerprintOrigin(options.origin) : undefined;
  const verdict = compareIdentity(superblock.origin, options.originLocation, options.origin.sizeBytes, fingerprint, options.relocated ?? false);
  if (verdict.kind === 'wrong-size') throw new BlockcacheError('ORIGIN_MISMATCH', verdict.message);
  const store = MetadataStore.open(options.cache, superblock);
  const originChanged = verdict.kind === 'changed';
  if (originChanged && !options.force && await countDirty(store) > 0) {
    throw new BlockcacheError('ORIGIN_MISMATCH', `${verdict.message}; the cache holds dirty blocks for the old origin, so it will not serve them over this one (use --force to serve anyway)`);
  }
  const mapping = new SetMapping(superblock.cacheBlocks, superblock.assoc);
  const table = new SlotTable(mapping, Math.ceil(superblock.origin.sizeBytes / superblock.blockBytes));
  const index = new BlockIndex(superblock.cacheBlocks, (slot) => table.originOf[slot]!, mapping);
  const originOf = (slot: number) => table.originOf[slot]!;
  const policy = createPolicy(superblock.policy, { cacheBlocks: superblock.cacheBlocks, assoc: superblock.assoc, originOf });
  const counts = await recover(options, store, superblock, table, index, originChanged && !options.force);
  for (let slot = 0; slot < superblock.cacheBlocks; slot++) {
    if (table.has(slot, VALID)) policy.insert(slot, table.originOf[slot]!);
  }
  // Free slots are taken lowest first: a sequential burst lands in consecutive slots, which
  // writeback then reads with single large reads.
  table.buildFreeLists();
  // Mark the cache in use before serving: from now on a crash is detectable.
  // Recovery stages no deferrable record, so the store writes every one or throws.
  assert((await store.writeStaged()).deferredBlocks.length === 0, 'recovery records deferred');
  await options.cache.flush();
  await store.updateSuperblock({ cleanShutdown: false, origin: { ...superblock.origin, fingerprintValid: false } });
  await options.cache.flush();
  const engine = new CacheEngine({ cache: options.cache, origin: options.origin, store, table, index, policy,
    settings: options.settings, commitIntervalMs: options.commitIntervalMs, ramBytes: options.ramBytes, readaheadBytes: options.readaheadBytes, log: options.log, time: options.time });
  return { engine, report: { ...counts, cleanShutdown: superblock.cleanShutdown, damagedSuperblockCopies: damagedCopies, originChanged } };
}

/**
 * Applies the recovery decision table to every record; rewrites freed records as empty.
 *
 * One streaming pass over the metadata region, a set at a time: every record of an origin
 * block lives in that block's set, so whether a record is superseded is known once its set
 * is decoded. Records are decoded straight into the slot table (no per-record objects, no
 * copy of the region); per-set scratch arrays hold the record kinds and sequences. Freed
 * records are cleared in the chunk and their pages written back before the scan moves on
 * (unflushed, like any staged record: openCache flushes before the superblock). Clean blocks
 * whose data must be checked (R8) wait as RESERVED, with their checksums in a list, until the
 * scan is done. Checksums of kept clean blocks stay on disk only (see SlotTable).
 */
async function recover(
  options: OpenOptions, store: MetadataStore, superblock: Superblock, table: SlotTable, index: BlockIndex, dropClean: boolean,
): Promise<{ keptClean: number; keptDirty: number; freed: number; corruptRecords: number }> {
  const mapping = table.mapping;
  const assoc = mapping.assoc;
  // The decision of every (state, superseded) pair: the other inputs are the same for every record.
  const decisionOf = new Uint8Array(RECORD_STATES.length * 2);
  RECORD_STATES.forEach((record, state) => {
    for (const superseded of [false, true]) {
      const decision = decideRecovery({
        record, superseded, cleanShutdown: superblock.cleanShutdown,
        originWrites: superblock.originWritesUncommitted, originChanged: dropClean, dataCrc: 'unknown',
      });
      decisionOf[state * 2 + (superseded ? 1 : 0)] = DECISIONS.indexOf(decision);
    }
  });
  const states = new Uint8Array(assoc);
  const superseded = new Uint8Array(assoc);
  const sequences = new Float64Array(assoc);
  const crcs = new Float64Array(assoc);
  /** Pairs (slot, record checksum or NO_CRC) of the clean blocks whose data must be checked (crash recovery only). */
  const checks: number[] = [];
  const record = emptyRecord();
  const counts = { keptClean: 0, keptDirty: 0, freed: 0, corruptRecords: 0 };
  let maxSequence = superblock.commitSequence;
  let toCheck = 0;

  const recoverSet = (chunk: RecordChunk, first: number): void => {
    if (chunk.allEmpty(first, assoc)) return; // every slot stays free (state 0), nothing to write
    const set = mapping.setOfCacheBlock(first);
    // Pass 1: decode; the index keeps, per origin block, the highest-ranked record (valid or invalidation).
    for (let i = 0; i < assoc; i++) {
      const slot = first + i;
      superseded[i] = 0;
      const status = chunk.decode(slot, record);
      if (status === RECORD_EMPTY) {
        states[i] = STATE_EMPTY;
        continue;
      }
      // A record naming an origin block of another set cannot have been written by this cache.
      if (status !== RECORD_FOUND || mapping.setOf(record.originBlock) !== set) {
        states[i] = STATE_CORRUPT;
        counts.corruptRecords++;
        continue;
      }
      const valid = (record.flags & RECORD_VALID) !== 0;
      states[i] = !valid ? STATE_INVALID : (record.flags & RECORD_DIRTY) !== 0 ? STATE_DIRTY : STATE_CLEAN;
      table.originOf[slot] = record.originBlock;
      sequences[i] = record.sequence;
      crcs[i] = (record.flags & RECORD_DATA_CRC) !== 0 ? record.dataCrc : NO_CRC;
      if (record.sequence > maxSequence) maxSequence = record.sequence;
      const best = index.get(record.originBlock);
      if (best < 0) index.insert(record.originBlock, slot);
      else if (recordRank(record.sequence, valid) > recordRank(sequences[best - first]!, states[best - first] !== STATE_INVALID)) {
        superseded[best - first] = 1;
        index.delete(record.originBlock);
        index.insert(record.originBlock, slot);
      } else superseded[i] = 1;
    }
    // Pass 2: decide and apply.
    for (let i = 0; i < assoc; i++) {
      const slot = first + i;
      const state = states[i]!;
      const decision = DECISIONS[decisionOf[state * 2 + superseded[i]!]!];
      if (decision === 'keep-dirty') {
        table.state[slot] = VALID | PERSISTED_DIRTY | DIRTY_ON_DISK;
        table.setDirty(slot, true);
        table.validCount++;
        counts.keptDirty++;
      } else if (decision === 'keep-clean') {
        table.state[slot] = VALID; // the checksum stays in the durable record only
        table.validCount++;
        counts.keptClean++;
      } else if (decision === 'check-data') {
        // A clean record with no checksum cannot be proven: freed by the check (R8 -> R10).
        table.state[slot] = RESERVED;
        checks.push(slot, crcs[i]!);
        toCheck++;
      } else {
        assert(decision === 'free');
        if (state !== STATE_EMPTY && state !== STATE_CORRUPT && index.get(table.originOf[slot]!) === slot) index.delete(table.originOf[slot]!);
        if (state !== STATE_EMPTY) {
          chunk.clear(slot);
          counts.freed++;
        }
        freeSlot(table, slot);
      }
    }
  };

  await store.scan({
    blocksMultiple: assoc,
    visit: (chunk) => {
      assert(chunk.firstCacheBlock % assoc === 0 && chunk.blockCount % assoc === 0, 'a chunk holds whole sets');
      for (let first = chunk.firstCacheBlock; first < chunk.firstCacheBlock + chunk.blockCount; first += assoc) recoverSet(chunk, first);
    },
    progress: (done, total) => options.progress?.('metadata', done, total),
  });
  if (toCheck > 0) {
    const freed = await verifyCleanData(options, superblock, table, checks);
    for (const slot of freed) {
      index.delete(table.originOf[slot]!);
      store.stageEmpty(slot);
      freeSlot(table, slot);
    }
    counts.freed += freed.length;
    counts.keptClean += toCheck - freed.length;
    table.validCount += toCheck - freed.length;
  }
  if (maxSequence > superblock.commitSequence) await store.updateSuperblock({ commitSequence: maxSequence });
  return counts;
}

function freeSlot(table: SlotTable, slot: number): void {
  table.state[slot] = 0;
  table.originOf[slot] = 0;
}

/** A clean record without a data checksum (not a CRC-32C value). */
const NO_CRC = -1;
const STATE_EMPTY = 0;
const STATE_CORRUPT = 1;
const STATE_INVALID = 2;
const STATE_CLEAN = 3;
const STATE_DIRTY = 4;
const RECORD_STATES: readonly RecordState[] = ['empty', 'corrupt', 'invalid', 'clean', 'dirty'];
const DECISIONS: readonly RecoveryDecision[] = ['free', 'keep-clean', 'keep-dirty', 'check-data'];
/** Clean blocks verified at once during recovery. */
const VERIFY_INFLIGHT_MAX = 32;

/**
 * Reads each clean block waiting for proof (`checks`: slot, checksum pairs) and decides by
 * its checksum: a match makes it VALID; the blocks that do not match are returned, to be freed.
 */
async function verifyCleanData(options: OpenOptions, superblock: Superblock, table: SlotTable, checks: number[]): Promise<number[]> {
  const count = checks.length / 2;
  let next = 0;
  let done = 0;
  const mismatched: number[] = [];
  const worker = async () => {
    const buffer = Buffer.allocUnsafe(superblock.blockBytes);
    while (next < count) {
      const at = next++;
      const slot = checks[2 * at]!;
      const crc = checks[2 * at + 1]!;
      assert(table.has(slot, RESERVED));
      let match = false;
      if (crc !== NO_CRC) {
        await options.cache.read(buffer, superblock.dataOffsetBytes + slot * superblock.blockBytes);
        match = crc32c(buffer) === crc;
      }
      if (match) table.state[slot] = VALID;
      else mismatched.push(slot);
      done++;
      options.progress?.('verify', done, count);
    }
  };
  await Promise.all(Array.from({ length: Math.min(VERIFY_INFLIGHT_MAX, count) }, worker));
  assert(done === count, `every block waiting for proof was checked: ${done} of ${count}`);
  return mismatched;
}
