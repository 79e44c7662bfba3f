// Creating and opening caches: format a cache device for an origin; open one,
// check its origin, recover its mapping (docs/DURABILITY.md, recovery table)
// and hand back a running engine.
import { BlockDevice } from '../devices/block-device.js';
import { computeLayout } from '../format/layout.js';
import { CacheMode, Superblock, fitName } from '../format/superblock.js';
import { RECORD_DIRTY, RECORD_VALID, RECORD_DATA_CRC } from '../format/record.js';
import { MetadataStore, newUuid, readSuperblock } from '../metadata/metadata-store.js';
import { decideRecovery, recordRank, RecordState, RecoveryDecision } from '../metadata/recovery.js';
import { assert } from '../stdx/assert.js';
import { compareIdentity, fingerprintOrigin, OriginLocation } from '../metadata/origin-identity.js';
import { createPolicy, DEFAULT_POLICY } from '../policies/registry.js';
import { BlockcacheError, isBlockcacheError } from '../stdx/errors.js';
import { crc32c } from '../stdx/checksum.js';
import { BlockIndex } from './block-index.js';
import { CacheEngine } from './engine.js';
import { CleanerSettings } from './cleaner.js';
import { SetMapping } from './set-mapping.js';
import { DIRTY_ON_DISK, HAS_CRC, PERSISTED_DIRTY, SlotTable, VALID } from './slot-table.js';
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
  const store = await MetadataStore.open(options.cache, existing);
  const dirty = countDirty(store, existing.cacheBlocks);
  if (dirty > 0) {
    throw new BlockcacheError('DIRTY_DATA', `${options.cache.name} holds ${dirty} dirty blocks not yet on the origin; run 'blockcache detach' first, or add --discard-dirty to lose them`);
  }
}

function countDirty(store: MetadataStore, cacheBlocks: number): number {
  let dirty = 0;
  for (let slot = 0; slot < cacheBlocks; slot++) {
    const record = store.decode(slot);
    if (record.kind === 'record' && (record.flags & RECORD_DIRTY) !== 0) dirty++;
  }
  return dirty;
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
  readonly log?: (line: string) => void;
  readonly progress?: (phase: string, done: number, total: number) => void;
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
  const store = await MetadataStore.open(options.cache, superblock, (done, total) => options.progress?.('metadata', done, total));
  const originChanged = verdict.kind === 'changed';
  if (originChanged && !options.force && countDirty(store, superblock.cacheBlocks) > 0) {
    throw new BlockcacheError('ORIGIN_MISMATCH', `${verdict.message}; the cache holds dirty blocks for the old origin, so it will not serve them over this one (use --force to serve anyway)`);
  }
  const mapping = new SetMapping(superblock.cacheBlocks, superblock.assoc);
  const table = new SlotTable(mapping, Math.ceil(superblock.origin.sizeBytes / superblock.blockBytes));
  const index = new BlockIndex(superblock.cacheBlocks, (slot) => table.originOf[slot]!);
  const originOf = (slot: number) => table.originOf[slot]!;
  const policy = createPolicy(superblock.policy, { cacheBlocks: superblock.cacheBlocks, assoc: superblock.assoc, originOf });
  const counts = await recover(options, store, superblock, table, index, originChanged && !options.force);
  for (let slot = 0; slot < superblock.cacheBlocks; slot++) {
    if (table.has(slot, VALID)) policy.insert(slot, table.originOf[slot]!);
  }
  // Free slots are pushed highest first so they are taken lowest first: a sequential burst
  // lands in consecutive slots, which writeback then reads with single large reads.
  for (let slot = superblock.cacheBlocks - 1; slot >= 0; slot--) {
    if (!table.has(slot, VALID)) table.pushFree(slot);
  }
  // Mark the cache in use before serving: from now on a crash is detectable.
  await store.writeStaged();
  await options.cache.flush();
  await store.updateSuperblock({ cleanShutdown: false, origin: { ...superblock.origin, fingerprintValid: false } });
  await options.cache.flush();
  const engine = new CacheEngine({ cache: options.cache, origin: options.origin, store, table, index, policy,
    settings: options.settings, commitIntervalMs: options.commitIntervalMs, ramBytes: options.ramBytes, log: options.log });
  return { engine, report: { ...counts, cleanShutdown: superblock.cleanShutdown, damagedSuperblockCopies: damagedCopies, originChanged } };
}

/** Applies the recovery decision table to every record; rewrites freed records as empty. */
async function recover(
  options: OpenOptions, store: MetadataStore, superblock: Superblock, table: SlotTable, index: BlockIndex, dropClean: boolean,
): Promise<{ keptClean: number; keptDirty: number; freed: number; corruptRecords: number }> {
  const blocks = superblock.cacheBlocks;
  // Pass 1: decode every record; the index keeps, per origin block, the highest-ranked record
  // (valid or invalidation). Temporary arrays only, no per-record objects.
  const states = new Uint8Array(blocks);
  const superseded = new Uint8Array(blocks);
  const sequences = new Float64Array(blocks);
  let corruptRecords = 0;
  let maxSequence = superblock.commitSequence;
  for (let slot = 0; slot < blocks; slot++) {
    const record = store.decode(slot);
    if (record.kind !== 'record') {
      states[slot] = record.kind === 'empty' ? STATE_EMPTY : STATE_CORRUPT;
      if (record.kind === 'corrupt') corruptRecords++;
      continue;
    }
    const valid = (record.flags & RECORD_VALID) !== 0;
    states[slot] = !valid ? STATE_INVALID : (record.flags & RECORD_DIRTY) !== 0 ? STATE_DIRTY : STATE_CLEAN;
    table.originOf[slot] = record.originBlock;
    sequences[slot] = record.sequence;
    table.dataCrc[slot] = (record.flags & RECORD_DATA_CRC) !== 0 ? record.dataCrc : 0;
    if ((record.flags & RECORD_DATA_CRC) !== 0) table.state[slot]! |= HAS_CRC;
    maxSequence = Math.max(maxSequence, record.sequence);
    const best = index.get(record.originBlock);
    if (best < 0) index.insert(record.originBlock, slot);
    else if (recordRank(record.sequence, valid) > recordRank(sequences[best]!, states[best] !== STATE_INVALID)) {
      superseded[best] = 1;
      index.delete(record.originBlock);
      index.insert(record.originBlock, slot);
    } else superseded[slot] = 1;
  }
  // Pass 2: decide; blocks whose clean data must be checked are read in parallel.
  const cleanShutdown = superblock.cleanShutdown;
  const decisions = new Uint8Array(blocks);
  const toCheck: number[] = [];
  for (let slot = 0; slot < blocks; slot++) {
    const decision = decideRecovery({
      record: RECORD_STATES[states[slot]!]!, superseded: superseded[slot] === 1, cleanShutdown,
      originWrites: superblock.originWritesUncommitted, originChanged: dropClean, dataCrc: 'unknown',
    });
    decisions[slot] = DECISIONS.indexOf(decision);
    if (decision === 'check-data') toCheck.push(slot);
  }
  await verifyCleanData(options, superblock, table, toCheck, decisions);
  // Pass 3: apply.
  const counts = { keptClean: 0, keptDirty: 0, freed: 0, corruptRecords };
  for (let slot = 0; slot < blocks; slot++) {
    const decision = DECISIONS[decisions[slot]!];
    if (decision === 'keep-dirty') {
      table.state[slot] = VALID | PERSISTED_DIRTY | DIRTY_ON_DISK;
      table.setDirty(slot, true);
      table.validCount++;
      counts.keptDirty++;
      continue;
    }
    if (decision === 'keep-clean') {
      table.state[slot] = VALID | (table.state[slot]! & HAS_CRC);
      table.validCount++;
      counts.keptClean++;
      continue;
    }
    assert(decision === 'free');
    if (states[slot] !== STATE_EMPTY && states[slot] !== STATE_CORRUPT && index.get(table.originOf[slot]!) === slot) index.delete(table.originOf[slot]!);
    if (states[slot] !== STATE_EMPTY) {
      store.stageEmpty(slot);
      counts.freed++;
    }
    table.state[slot] = 0;
    table.originOf[slot] = 0;
  }
  if (maxSequence > superblock.commitSequence) await store.updateSuperblock({ commitSequence: maxSequence });
  return counts;
}

const STATE_EMPTY = 0;
const STATE_CORRUPT = 1;
const STATE_INVALID = 2;
const STATE_CLEAN = 3;
const STATE_DIRTY = 4;
const RECORD_STATES: readonly RecordState[] = ['empty', 'corrupt', 'invalid', 'clean', 'dirty'];
const DECISIONS: readonly RecoveryDecision[] = ['free', 'keep-clean', 'keep-dirty', 'check-data'];
/** Clean blocks verified at once during recovery. */
const VERIFY_INFLIGHT_MAX = 32;

/** Reads each clean block that needs proof and decides keep or free by its checksum. */
async function verifyCleanData(options: OpenOptions, superblock: Superblock, table: SlotTable, slots: number[], decisions: Uint8Array): Promise<void> {
  let next = 0;
  let done = 0;
  const worker = async () => {
    const buffer = Buffer.allocUnsafe(superblock.blockBytes);
    while (next < slots.length) {
      const slot = slots[next++]!;
      let match = false;
      if (table.has(slot, HAS_CRC)) {
        await options.cache.read(buffer, superblock.dataOffsetBytes + slot * superblock.blockBytes);
        match = crc32c(buffer) === table.dataCrc[slot];
      }
      decisions[slot] = DECISIONS.indexOf(match ? 'keep-clean' : 'free');
      options.progress?.('verify', ++done, slots.length);
    }
  };
  await Promise.all(Array.from({ length: Math.min(VERIFY_INFLIGHT_MAX, slots.length) }, worker));
}

