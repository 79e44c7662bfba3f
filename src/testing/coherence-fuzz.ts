// A seeded coherence fuzzer for the real engine (testing only): what the crash
// simulator does not do. Readers read any blocks while writers write them, so a
// read and a write of one block overlap; large reads take the RAM tier's
// zero-copy path (readPinned) and hold their loans for a while, so writes move
// lent pages; background writeback runs paced (it waits between runs, as under
// client load), while writers trim and zero and a flusher commits.
//
// Lending is steered, since random blocks rarely meet: readers place many large
// reads over blocks just written (so dirty pages are lent), and warm a range
// with a copying read when it is not all in RAM and then lend it; writers aim a
// share of their writes at blocks a reader holds lent, a dirty one first (some
// FUA or write-zeroes: a dirty lent page then moves on the paths that write it
// down at once rather than absorb the write), with a read of that block racing
// the write. Medium RAM tiers lend and evict at once, so eviction looks at lent
// pages. A few writes are larger than RAM_WRITE_BYTES_MAX: those take the SSD
// tier's run paths (a run of cached blocks in one piece, with their clean RAM
// copies updated) or the per-block path without new RAM pages.
//
// The rule is test/cache/scripts/coherence.py's: block b's content is (b,
// version) repeated; a read of b must return b's own content at a version no
// older than the newest acknowledged when the read began (or the version in
// flight); after a trim anything is allowed until the next write. At the end,
// after a flush, every block reads exactly its newest version, and after
// writebackAll and close the origin holds exactly that. An exception (an
// engine assertion) is a violation too.
//
// A zero-copy read's views must not change while it holds them (a lent page is
// never reused or written): they are checked by the rule when lent, and their
// bytes compared with that copy when the loan is given back. Half the loans
// are held across up to HELD_LOAN_REQUESTS_MAX more of the reader's requests,
// the rest for a few microtask and event-loop turns.
//
// Device latency is a random number of microtask turns per operation, or now
// and then a turn of the event loop, drawn from the seed. Background work
// (paced writeback) runs on virtual time that moves with the requests
// (virtual-time.ts), so a failing seed replays exactly. Every engine call is
// recorded in an OperationLog, which shows what a hung seed was doing
// (timed-seed-runner.ts). `node dist/src/testing/coherence-fuzz-main.js --seeds N --seed S`.
import { BlockDevice, DeviceCapabilities, PinnedRead, WriteFlags, ZeroFlags } from '../devices/block-device.js';
import { MemoryDevice } from '../devices/memory-device.js';
import { createCache, openCache } from '../cache/open-cache.js';
import { CacheMode } from '../format/superblock.js';
import { RAM_WRITE_BYTES_MAX } from '../constants.js';
import { SLAB_READ_BYTES_MAX } from '../nbd/reply-writer.js';
import { assert } from '../stdx/assert.js';
import { OperationLog } from './operation-log.js';
import { Prng } from './prng.js';
import type { SeedResult } from './timed-seed-runner.js';
import { VirtualTime } from './virtual-time.js';

const BLOCK = 4096;
const ORIGIN_BLOCKS = 512;
const WRITERS = 4;
const READERS = 4;
/** Requests per writer and per reader. */
const REQUESTS = 150;
const ZERO = -1;
const TRIMMED = -2;
/** The version written over trimmed blocks before the final checks (trimmed content is undefined). */
const FINAL_VERSION = 999_999;
const LOCATION = { name: 'coherence-fuzz-origin', deviceId: 3, inode: 3 };
/** Virtual milliseconds per request issued: the writeback rate (2000 a second) lets a run out every ~10 requests. */
const MS_PER_REQUEST = 0.05;
/** Share of writes that trim or write zeroes instead (half each). */
const TRIM_OR_ZERO_CHANCE = 0.06;
const FUA_CHANCE = 0.05;
/** Blocks per write: runs of 1 to this many. */
const WRITE_BLOCKS_MAX = 4;
/** Share of writes that are large: over RAM_WRITE_BYTES_MAX, which the RAM tier does not take whole (writeRunOfHits, cold runs). */
const LARGE_WRITE_CHANCE = 0.15;
const LARGE_WRITE_BLOCKS_MIN = RAM_WRITE_BYTES_MAX / BLOCK + 1;
const LARGE_WRITE_BLOCKS_SPAN = 16;
const LARGE_WRITE_READ_BACK_CHANCE = 0.75;
const LARGE_WRITE_FLUSH_CHANCE = 0.8;
/** Share of reads that are large: over SLAB_READ_BYTES_MAX, which the NBD server sends zero-copy when the RAM tier holds them. */
const LARGE_READ_CHANCE = 0.35;
const LARGE_READ_BLOCKS_MIN = SLAB_READ_BYTES_MAX / BLOCK + 1;
const LARGE_READ_BLOCKS_MAX = 40;
const SMALL_READ_BLOCKS_MAX = 8;
/** Share of large reads placed over a recently written block: its page is likely dirty when lent. */
const RECENT_READ_CHANCE = 0.5;
/** Recently written blocks remembered for readers to aim at. */
const RECENT_WRITES = 16;
/** Share of loans held across later requests of the reader (eviction gets to look at them). */
const HELD_LOAN_CHANCE = 0.5;
/** A held loan is checked and given back after this many more of its reader's requests, at most. */
const HELD_LOAN_REQUESTS_MAX = 12;
/** Other loans are held up to this many microtask turns and event-loop turns (writes, fills and the cleaner run meanwhile). */
const LOAN_TURNS_MAX = 40;
const LOAN_LOOP_TURNS_MAX = 3;
/** Share of writes aimed at a block a reader holds lent (copy on write, RamTier.move), and their FUA share. */
const LENT_WRITE_CHANCE = 0.3;
const LENT_FUA_CHANCE = 0.3;
/** Share of writes to lent blocks that write zeroes instead (a dirty page is zeroed in place, moved if lent). */
const LENT_ZERO_CHANCE = 0.15;
/** A read racing a write to a lent block starts within this many microtask turns. */
const RACING_READ_TURNS_MAX = 8;
/** RAM tier sizes in pages, drawn per seed (see the draw in runCoherenceFuzz). */
const SMALL_PAGES_MIN = 16;
const SMALL_PAGES_SPAN = 48;
/**
 * Medium tiers: enough pages to lend a large read (RAM_PINNED_PERCENT of them), few enough
 * that fills evict while pages are lent (a victim must never be a lent page).
 */
const LENDING_PAGES_MIN = 68;
const LENDING_PAGES_SPAN = 160;
const LARGE_PAGES_MIN = 256;
const LARGE_PAGES_SPAN = 512;
/** Lines of an exception's stack kept in its violation. */
const STACK_LINES = 4;
/** Violations the final checks report at most (one bug usually breaks many blocks). */
const FINAL_VIOLATIONS_MAX = 10;

/** Waits `count` microtask turns (device latency). */
async function turns(count: number): Promise<void> {
  for (let i = 0; i < count; i++) await Promise.resolve();
}

/** Waits `count` turns of the event loop (timers and devices' setImmediate latency run). */
async function loopTurns(count: number): Promise<void> {
  for (let i = 0; i < count; i++) await new Promise((resolve) => setImmediate(resolve));
}

/**
 * A device whose every asynchronous operation first waits a random number of turns. Given
 * `now` (its memory), it also offers readNow and writeNow at once, as an inline FileDevice
 * does (the engine's synchronous SSD-tier hits).
 */
class SlowDevice implements BlockDevice {
  readonly name: string;
  readonly sizeBytes: number;
  readonly capabilities: DeviceCapabilities;
  readonly readNow?: (target: Buffer, offsetBytes: number) => boolean;
  readonly writeNow?: (source: Buffer, offsetBytes: number, flags?: WriteFlags) => boolean;
  constructor(private readonly inner: BlockDevice, private readonly random: Prng, private readonly turnsMax: number, now: MemoryDevice | null = null) {
    this.name = inner.name;
    this.sizeBytes = inner.sizeBytes;
    this.capabilities = inner.capabilities;
    if (now !== null) {
      this.readNow = (target, offsetBytes) => { now.readSync(target, offsetBytes); return true; };
      this.writeNow = (source, offsetBytes, flags) => {
        if (flags?.fua) return false;
        now.writeSync(source, offsetBytes);
        return true;
      };
    }
  }
  /** Some operations wait for the event loop to turn (as real I/O does), so timers and the cleaner's pacing run too. */
  private delay(): Promise<void> {
    if (this.random.chance(0.1)) return new Promise((resolve) => setImmediate(resolve));
    return turns(this.random.below(this.turnsMax + 1));
  }
  async read(target: Buffer, offsetBytes: number): Promise<void> { await this.delay(); return this.inner.read(target, offsetBytes); }
  async write(source: Buffer, offsetBytes: number, flags?: WriteFlags): Promise<void> {
    // The device takes the bytes now (as a pwrite does once issued), completes later.
    const copy = Buffer.from(source);
    await this.delay();
    return this.inner.write(copy, offsetBytes, flags);
  }
  async flush(): Promise<void> { await this.delay(); return this.inner.flush(); }
  async trim(offsetBytes: number, lengthBytes: number, flags?: WriteFlags): Promise<void> { await this.delay(); return this.inner.trim(offsetBytes, lengthBytes, flags); }
  async writeZeroes(offsetBytes: number, lengthBytes: number, flags?: ZeroFlags): Promise<void> { await this.delay(); return this.inner.writeZeroes(offsetBytes, lengthBytes, flags); }
  close(): Promise<void> { return this.inner.close(); }
}

function content(block: number, version: number): Buffer {
  const data = Buffer.alloc(BLOCK);
  for (let at = 0; at < BLOCK; at += 8) {
    data.writeUInt32LE(block, at);
    data.writeUInt32LE(version, at + 4);
  }
  return data;
}

/** The version a block's bytes hold, ZERO, or a description of what is wrong. */
function decode(data: Buffer, block: number): number | string {
  if (data.every((byte) => byte === 0)) return ZERO;
  const owner = data.readUInt32LE(0);
  const version = data.readUInt32LE(4);
  if (!data.equals(content(owner, version))) return 'garbage';
  if (owner !== block) return `block ${owner}'s data (version ${version})`;
  return version;
}

export type FuzzResult = SeedResult;

/** The run's set-up drawn from its seed, without running it (what a hung seed was). */
export function describeCoherenceFuzz(seed: number, mode: CacheMode): string {
  return drawSetup(new Prng(seed), seed, mode).config;
}

interface Setup {
  readonly ramPages: number;
  readonly readaheadBlocks: number;
  readonly turnsMax: number;
  /** The cache device offers readNow/writeNow (drawn apart from the rest, which it leaves as it was). */
  readonly synchronousCache: boolean;
  readonly config: string;
}

/** Salt of the PRNG that draws `synchronousCache`. */
const SYNC_CACHE_SEED_SALT = 0x53594e43;

function drawSetup(random: Prng, seed: number, mode: CacheMode): Setup {
  // Off; small (churns, never lends: a large read needs more than RAM_PINNED_PERCENT of it);
  // medium (lends and evicts at once); large (holds whole reads, which then go zero-copy).
  const tier = random.below(20);
  const ramPages = tier < 3 ? 0
    : tier < 7 ? SMALL_PAGES_MIN + random.below(SMALL_PAGES_SPAN)
    : tier < 15 ? LENDING_PAGES_MIN + random.below(LENDING_PAGES_SPAN)
    : LARGE_PAGES_MIN + random.below(LARGE_PAGES_SPAN);
  const readaheadBlocks = random.chance(0.5) ? 2 ** (1 + random.below(4)) : 0;
  const turnsMax = 1 + random.below(12);
  const synchronousCache = new Prng((seed ^ SYNC_CACHE_SEED_SALT) >>> 0).chance(0.5);
  return {
    ramPages, readaheadBlocks, turnsMax, synchronousCache,
    config: `mode=${mode} ram=${ramPages} readahead=${readaheadBlocks} latency=${turnsMax} syncCacheIo=${synchronousCache}`,
  };
}

export async function runCoherenceFuzz(seed: number, mode: CacheMode = 'writeback', log = new OperationLog()): Promise<FuzzResult> {
  const random = new Prng(seed);
  const { ramPages, readaheadBlocks, turnsMax, synchronousCache, config } = drawSetup(random, seed, mode);
  let requests = 0;
  const time = new VirtualTime(() => requests);
  const timers = time.scope();
  const issued = (): void => {
    requests++;
    time.advance(MS_PER_REQUEST);
  };
  const origin = new MemoryDevice(ORIGIN_BLOCKS * BLOCK);
  const cacheMemory = new MemoryDevice(1024 * 1024); // ~200 blocks: fewer than the blocks in play
  await createCache({ cache: cacheMemory, origin, originLocation: LOCATION, mode, blockBytes: BLOCK, assoc: 64 });
  const { engine } = await openCache({
    cache: new SlowDevice(cacheMemory, new Prng(random.next()), turnsMax, synchronousCache ? cacheMemory : null), origin: new SlowDevice(origin, new Prng(random.next()), turnsMax),
    originLocation: LOCATION, commitIntervalMs: 0, ramBytes: ramPages * BLOCK, readaheadBytes: readaheadBlocks * BLOCK,
    settings: { dirtyThresholdPercent: 10, writebackInflightMax: 8, writebackRateIops: 2000 }, time: timers,
  });
  const history: number[][] = Array.from({ length: ORIGIN_BLOCKS }, () => [ZERO]);
  const inflight: (number | null)[] = new Array(ORIGIN_BLOCKS).fill(null);
  const violations: string[] = [];
  /** Loans the readers hold per block, and the blocks written last: where writers and large reads aim. */
  const lent = new Uint16Array(ORIGIN_BLOCKS);
  const recent: number[] = [];
  const fail = (what: string) => (error: unknown): void => {
    const stack = error instanceof Error ? error.stack ?? String(error) : String(error);
    violations.push(`${what} threw: ${stack.split('\n').slice(0, STACK_LINES).join(' | ')}`);
  };
  /** Runs one engine call, recorded in the log while it is under way. */
  const logged = async <T>(description: string, call: () => Promise<T>): Promise<T> => {
    const sequence = log.begin(description);
    const result = await call();
    log.end(sequence);
    return result;
  };
  const accepts = (block: number, floor: number, observed: number): boolean => {
    const candidates = history[block]!.slice(floor);
    const pending = inflight[block];
    if (pending !== null && pending !== undefined) candidates.push(pending);
    return candidates.includes(TRIMMED) || candidates.includes(observed);
  };
  const check = (what: string, data: Buffer, first: number, floors: number[]): void => {
    for (let i = 0; i < floors.length; i++) {
      const block = first + i;
      const observed = decode(data.subarray(i * BLOCK, (i + 1) * BLOCK), block);
      if (typeof observed === 'string' || !accepts(block, floors[i]!, observed)) {
        violations.push(`${what} of block ${block} returned ${observed}; allowed ${history[block]!.slice(floors[i]!).join(',')} or in flight ${inflight[block]}`);
      }
    }
  };
  const floorsOf = (first: number, run: number): number[] => Array.from({ length: run }, (_, i) => history[first + i]!.length - 1);

  /** A copying read (readNow or read), checked by the rule; it also fills the RAM tier. */
  const copyRead = async (actor: string, first: number, run: number): Promise<void> => {
    const floors = floorsOf(first, run);
    const target = Buffer.alloc(run * BLOCK);
    if (!engine.readNow(target, first * BLOCK)) await logged(`${actor}: read ${first}+${run}`, () => engine.read(target, first * BLOCK));
    check('read', target, first, floors);
  };

  /** True if the block's RAM page is dirty (steering only: the rule never looks inside the engine). */
  const dirtyInRam = (block: number): boolean => {
    const page = engine.ram?.lookup(block) ?? -1;
    return page >= 0 && engine.ram!.isDirty(page);
  };
  /**
   * A block in [first, first + count) that is `eligible`, searching from `from`, the first one
   * that is also `preferred` if any; -1 if none (steering only).
   */
  const findIn = (first: number, count: number, from: number, eligible: (block: number) => boolean, preferred: (block: number) => boolean): number => {
    let found = -1;
    for (let i = 0; i < count; i++) {
      const block = first + ((from + i) % count);
      if (!eligible(block)) continue;
      if (preferred(block)) return block;
      if (found < 0) found = block;
    }
    return found;
  };
  const isLent = (block: number): boolean => lent[block] !== 0;
  const cleanInRam = (block: number): boolean => (engine.ram?.lookup(block) ?? -1) >= 0 && !dirtyInRam(block);
  /** A block a reader holds lent, one with a dirty RAM page first. */
  const lentIn = (first: number, count: number, from: number): number => findIn(first, count, from, isLent, dirtyInRam);
  /** A block with a clean RAM page, a lent one first. */
  const cleanInRamIn = (first: number, count: number, from: number): number => findIn(first, count, from, cleanInRam, isLent);
  /**
   * Waits for a write; when it went to a lent block, reads that block by copy meanwhile: a
   * write down from RAM (FUA, zeroes) must keep serving the block's newest bytes until it is done.
   */
  const racing = async (actor: string, writing: Promise<void>, block: number, lentBlock: boolean, rng: Prng): Promise<void> => {
    if (!lentBlock) return writing;
    const reading = (async () => {
      await turns(rng.below(RACING_READ_TURNS_MAX + 1));
      await copyRead(actor, block, 1);
    })();
    await Promise.all([writing, reading]);
  };

  const writer = async (w: number): Promise<void> => {
    const actor = `writer ${w}`;
    const rng = new Prng(random.next());
    const per = ORIGIN_BLOCKS / WRITERS;
    const first = w * per;
    let version = w * 100_000 + 1;
    for (let n = 0; n < REQUESTS && violations.length === 0; n++) {
      issued();
      const lentBlock = rng.chance(LENT_WRITE_CHANCE) ? lentIn(first, per, rng.below(per)) : -1;
      let block = lentBlock >= 0 ? lentBlock : first + rng.below(per);
      const kind = rng.next() / 2 ** 32;
      const lentZero = kind >= TRIM_OR_ZERO_CHANCE && lentBlock >= 0 && rng.chance(LENT_ZERO_CHANCE);
      if (kind < TRIM_OR_ZERO_CHANCE || lentZero) {
        const entry = kind < TRIM_OR_ZERO_CHANCE / 2 || lentZero ? ZERO : TRIMMED;
        const lentNote = lentBlock >= 0 ? ' (lent)' : '';
        inflight[block] = entry;
        if (entry === ZERO) await racing(actor, logged(`${actor}: write zeroes ${block}${lentNote}`, () => engine.writeZeroes(block * BLOCK, BLOCK)), block, lentBlock >= 0, rng);
        else await logged(`${actor}: trim ${block}${lentNote}`, () => engine.trim(block * BLOCK, BLOCK));
        history[block]!.push(entry);
        inflight[block] = null;
        continue;
      }
      const large = rng.chance(LARGE_WRITE_CHANCE);
      const blocks = large ? LARGE_WRITE_BLOCKS_MIN + rng.below(LARGE_WRITE_BLOCKS_SPAN) : 1 + rng.below(WRITE_BLOCKS_MAX);
      if (large && lentBlock < 0) {
        // Over a block with a clean RAM page (a lent one first): the run path must update it, moving it if lent.
        // A flush first now and then cleans the writer's dirty pages, which would send the write block by block.
        if (rng.chance(LARGE_WRITE_FLUSH_CHANCE)) await logged(`${actor}: flush`, () => engine.flush());
        const clean = cleanInRamIn(first, per, rng.below(per));
        block = Math.max(first, Math.min((clean >= 0 ? clean : block) - rng.below(blocks), first + per - blocks));
      }
      const run = Math.min(blocks, first + per - block);
      const entry = version++;
      const data = Buffer.concat(Array.from({ length: run }, (_, i) => content(block + i, entry)));
      for (let b = block; b < block + run; b++) inflight[b] = entry;
      const flags = rng.chance(lentBlock >= 0 ? LENT_FUA_CHANCE : FUA_CHANCE) ? { fua: true } : undefined;
      if (!engine.writeNow(data, block * BLOCK, flags)) {
        const description = `${actor}: write ${block}+${run} v${entry}${flags ? ' fua' : ''}${lentBlock >= 0 ? ' (lent)' : ''}`;
        await racing(actor, logged(description, () => engine.write(data, block * BLOCK, flags)), block, lentBlock >= 0, rng);
      }
      for (let b = block; b < block + run; b++) {
        history[b]!.push(entry);
        inflight[b] = null;
      }
      // A large write is read back now and then, before later writes can hide a stale copy.
      if (large && rng.chance(LARGE_WRITE_READ_BACK_CHANCE)) await copyRead(actor, block, run);
      if (recent.length < RECENT_WRITES) recent.push(block);
      else recent[rng.below(RECENT_WRITES)] = block;
      await turns(rng.below(4));
    }
  };

  /** A zero-copy read's loan: its views must still hold exactly `bytes` when it is given back. */
  interface Loan { readonly pinned: PinnedRead; readonly bytes: Buffer; readonly first: number; readonly run: number; dueAfter: number }
  /** A zero-copy read if the RAM tier lends the range now, checked by the rule; null if not lent. */
  const lend = (actor: string, first: number, run: number): Loan | null => {
    const floors = floorsOf(first, run);
    const pinned = engine.readPinned(first * BLOCK, run * BLOCK);
    if (pinned === null) return null;
    log.end(log.begin(`${actor}: zero-copy read ${first}+${run} lent`));
    const bytes = Buffer.concat(pinned.views); // a copy
    check('zero-copy read', bytes, first, floors);
    for (let b = first; b < first + run; b++) lent[b]!++;
    return { pinned, bytes, first, run, dueAfter: 0 };
  };
  const giveBack = (actor: string, loan: Loan): void => {
    const now = Buffer.concat(loan.pinned.views);
    for (let i = 0; i < loan.run; i++) {
      const was = loan.bytes.subarray(i * BLOCK, (i + 1) * BLOCK);
      const is = now.subarray(i * BLOCK, (i + 1) * BLOCK);
      if (was.equals(is)) continue;
      violations.push(`a lent view of block ${loan.first + i} changed while lent: ${decode(was, loan.first + i)} became ${decode(is, loan.first + i)}`);
      break;
    }
    for (let b = loan.first; b < loan.first + loan.run; b++) lent[b]!--;
    log.end(log.begin(`${actor}: zero-copy read ${loan.first}+${loan.run} given back`));
    loan.pinned.release();
  };
  /** Where a large read starts: over a recently written block now and then (its page likely dirty), else anywhere. */
  const largeReadStart = (run: number, rng: Prng): number => {
    if (recent.length > 0 && rng.chance(RECENT_READ_CHANCE)) {
      const block = recent[rng.below(recent.length)]!;
      return Math.max(0, Math.min(block - rng.below(run), ORIGIN_BLOCKS - run));
    }
    return rng.below(ORIGIN_BLOCKS - run + 1);
  };

  const reader = async (r: number): Promise<void> => {
    const actor = `reader ${r}`;
    const rng = new Prng(random.next());
    let held: Loan[] = [];
    try {
      for (let n = 0; n < REQUESTS && violations.length === 0; n++) {
        const due = held.filter((loan) => loan.dueAfter <= n);
        held = held.filter((loan) => loan.dueAfter > n);
        for (const loan of due) giveBack(actor, loan);
        issued();
        if (!rng.chance(LARGE_READ_CHANCE)) {
          const first = rng.below(ORIGIN_BLOCKS);
          await copyRead(actor, first, Math.min(1 + rng.below(SMALL_READ_BLOCKS_MAX), ORIGIN_BLOCKS - first));
          continue;
        }
        const run = LARGE_READ_BLOCKS_MIN + rng.below(LARGE_READ_BLOCKS_MAX - LARGE_READ_BLOCKS_MIN + 1);
        const first = largeReadStart(run, rng);
        let loan = lend(actor, first, run);
        if (loan === null) {
          // Not all in RAM (or too much lent): the copying read fills it, and then it is lent at once.
          await copyRead(actor, first, run);
          loan = lend(actor, first, run);
          if (loan === null) continue;
        }
        // The reply is being sent: writes meanwhile must move lent pages, and fills must pass them by.
        if (rng.chance(HELD_LOAN_CHANCE)) {
          loan.dueAfter = n + 1 + rng.below(HELD_LOAN_REQUESTS_MAX);
          held.push(loan);
          continue;
        }
        await turns(rng.below(LOAN_TURNS_MAX + 1));
        await loopTurns(rng.below(LOAN_LOOP_TURNS_MAX + 1));
        giveBack(actor, loan);
      }
    } finally {
      for (const loan of held) giveBack(actor, loan);
    }
  };

  let running = true;
  const flusher = async (): Promise<void> => {
    const rng = new Prng(random.next());
    while (running) {
      await turns(20 + rng.below(200));
      if (rng.chance(0.7)) await logged('flusher: flush', () => engine.flush());
      else await logged('flusher: commit', () => engine.commit());
    }
  };

  const verify = (what: string, bytes: Buffer): void => {
    for (let block = 0; block < ORIGIN_BLOCKS && violations.length < FINAL_VIOLATIONS_MAX; block++) {
      const observed = decode(bytes.subarray(block * BLOCK, (block + 1) * BLOCK), block);
      if (observed !== history[block]!.at(-1)) violations.push(`${what}: block ${block} is ${observed}, expected ${history[block]!.at(-1)}`);
    }
  };
  let closed = false;
  const finalChecks = async (): Promise<void> => {
    const actor = 'final checks';
    // Trimmed blocks are undefined: give them known content first.
    for (let block = 0; block < ORIGIN_BLOCKS; block++) {
      if (history[block]!.at(-1) !== TRIMMED) continue;
      await logged(`${actor}: write ${block}+1 v${FINAL_VERSION}`, () => engine.write(content(block, FINAL_VERSION), block * BLOCK));
      history[block]!.push(FINAL_VERSION);
    }
    await logged(`${actor}: flush`, () => engine.flush());
    const image = Buffer.alloc(ORIGIN_BLOCKS * BLOCK);
    await logged(`${actor}: read all`, () => engine.read(image, 0));
    verify('final read', image);
    await logged(`${actor}: writebackAll`, () => engine.writebackAll());
    await logged(`${actor}: close`, () => engine.close());
    closed = true;
    const stored = Buffer.alloc(ORIGIN_BLOCKS * BLOCK);
    await origin.read(stored, 0);
    verify('origin after writeback and close', stored);
  };

  let zeroCopyReads = 0;
  let moves = 0;
  try {
    const flushing = flusher().catch(fail('flusher'));
    await Promise.all([
      ...Array.from({ length: WRITERS }, (_, w) => writer(w).catch(fail(`writer ${w}`))),
      ...Array.from({ length: READERS }, (_, r) => reader(r).catch(fail(`reader ${r}`))),
    ]);
    running = false;
    await flushing;
    // A violation stops the actors part-way (a write may have been cut short): the final checks would only repeat it.
    if (violations.length === 0) await finalChecks();
  } catch (error) {
    fail('the final checks')(error);
  } finally {
    running = false;
    zeroCopyReads = engine.ramStats.zeroCopyReads;
    moves = engine.ram?.moves ?? 0;
    if (!closed) await logged('final checks: close after a violation', () => engine.close()).catch(() => {});
    timers.drop();
  }
  assert(violations.length > 0 || lent.every((count) => count === 0), 'every loan was given back');
  return { seed, config, violations, zeroCopyReads, moves };
}
