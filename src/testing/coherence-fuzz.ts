// A seeded coherence fuzzer for the real engine (testing only): what the crash
// simulator does not do. Readers read any blocks while writers write them, so a
// read and a write of one block overlap; large reads take the RAM tier's
// zero-copy path (readPinned) and hold their loans for a while, so writes move
// lent pages; background writeback runs paced (it waits between runs, as under
// client load), while writers trim and zero and a flusher commits.
//
// The rule is test/cache/scripts/coherence.py's: block b's content is (b,
// version) repeated; a read of b must return b's own content at a version no
// older than the newest acknowledged when the read began (or the version in
// flight); after a trim anything is allowed until the next write. At the end,
// after a flush, every block reads exactly its newest version, and after
// writebackAll and close the origin holds exactly that.
//
// A zero-copy read's views must not change while it holds them (a lent page is
// never reused or written): their bytes are compared with a copy taken when the
// read completed, when the loan is given back; some loans are held across
// several more of the reader's requests, so eviction gets to look at lent pages.
//
// Device latency is a random number of microtask turns per operation, or now
// and then a turn of the event loop, drawn from the seed. Background work
// (paced writeback) runs on virtual time that moves with the requests
// (virtual-time.ts), so a failing seed replays exactly.
// `node dist/src/testing/coherence-fuzz-main.js --seeds N --seed S`.
import { BlockDevice, DeviceCapabilities, PinnedRead, WriteFlags, ZeroFlags } from '../devices/block-device.js';
import { MemoryDevice } from '../devices/memory-device.js';
import { createCache, openCache } from '../cache/open-cache.js';
import { CacheMode } from '../format/superblock.js';
import { Prng } from './prng.js';
import { VirtualTime } from './virtual-time.js';

const BLOCK = 4096;
const ORIGIN_BLOCKS = 512;
const WRITERS = 4;
const READERS = 4;
/** Requests per writer and per reader. */
const REQUESTS = 150;
const ZERO = -1;
const TRIMMED = -2;
const LOCATION = { name: 'coherence-fuzz-origin', deviceId: 3, inode: 3 };
/** Virtual milliseconds per request issued: the writeback rate (2000 a second) lets a run out every ~10 requests. */
const MS_PER_REQUEST = 0.05;
/** A held zero-copy read is checked and given back after this many more of its reader's requests, at most. */
const HELD_LOAN_REQUESTS_MAX = 12;

/** Waits `turns` microtask turns (device latency). */
async function turns(count: number): Promise<void> {
  for (let i = 0; i < count; i++) await Promise.resolve();
}

/** A device whose every operation first waits a random number of turns. */
class SlowDevice implements BlockDevice {
  readonly name: string;
  readonly sizeBytes: number;
  readonly capabilities: DeviceCapabilities;
  constructor(private readonly inner: BlockDevice, private readonly random: Prng, private readonly turnsMax: number) {
    this.name = inner.name;
    this.sizeBytes = inner.sizeBytes;
    this.capabilities = inner.capabilities;
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

export interface FuzzResult {
  readonly seed: number;
  readonly config: string;
  readonly violations: string[];
  /** Reads sent zero-copy, and blocks moved off lent pages by writes (the paths the crash simulator lacks). */
  readonly zeroCopyReads: number;
  readonly moves: number;
}

export async function runCoherenceFuzz(seed: number, mode: CacheMode = 'writeback'): Promise<FuzzResult> {
  const random = new Prng(seed);
  // Small tiers churn; large ones hold whole reads, which then go zero-copy (readPinned).
  const tier = random.below(20);
  const ramPages = tier < 4 ? 0 : tier < 10 ? 16 + random.below(48) : tier < 15 ? 96 + random.below(200) : 256 + random.below(512);
  const readaheadBlocks = random.chance(0.5) ? 2 ** (1 + random.below(4)) : 0;
  const turnsMax = 1 + random.below(12);
  const config = `mode=${mode} ram=${ramPages} readahead=${readaheadBlocks} latency=${turnsMax}`;
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
    cache: new SlowDevice(cacheMemory, new Prng(random.next()), turnsMax), origin: new SlowDevice(origin, new Prng(random.next()), turnsMax),
    originLocation: LOCATION, commitIntervalMs: 0, ramBytes: ramPages * BLOCK, readaheadBytes: readaheadBlocks * BLOCK,
    settings: { dirtyThresholdPercent: 10, writebackInflightMax: 8, writebackRateIops: 2000 }, time: timers,
  });
  const history: number[][] = Array.from({ length: ORIGIN_BLOCKS }, () => [ZERO]);
  const inflight: (number | null)[] = new Array(ORIGIN_BLOCKS).fill(null);
  const violations: string[] = [];
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

  const writer = async (w: number): Promise<void> => {
    const rng = new Prng(random.next());
    const per = ORIGIN_BLOCKS / WRITERS;
    const first = w * per;
    let version = w * 100_000 + 1;
    for (let n = 0; n < REQUESTS && violations.length === 0; n++) {
      const block = first + rng.below(per);
      const kind = rng.next() / 2 ** 32;
      issued();
      if (kind < 0.06) {
        const entry = kind < 0.03 ? ZERO : TRIMMED;
        inflight[block] = entry;
        if (entry === ZERO) await engine.writeZeroes(block * BLOCK, BLOCK);
        else await engine.trim(block * BLOCK, BLOCK);
        history[block]!.push(entry);
        inflight[block] = null;
        continue;
      }
      const run = Math.min(1 + rng.below(4), first + per - block);
      const entry = version++;
      const data = Buffer.concat(Array.from({ length: run }, (_, i) => content(block + i, entry)));
      for (let b = block; b < block + run; b++) inflight[b] = entry;
      const flags = rng.chance(0.05) ? { fua: true } : undefined;
      if (!engine.writeNow(data, block * BLOCK, flags)) await engine.write(data, block * BLOCK, flags);
      for (let b = block; b < block + run; b++) {
        history[b]!.push(entry);
        inflight[b] = null;
      }
      await turns(rng.below(4));
    }
  };

  /** A zero-copy read's loan: its views must still hold exactly `bytes` when it is given back. */
  interface Loan { readonly pinned: PinnedRead; readonly bytes: Buffer; readonly first: number; dueAfter: number }
  const giveBack = (loan: Loan): void => {
    const now = Buffer.concat(loan.pinned.views);
    if (!now.equals(loan.bytes)) {
      for (let i = 0; i * BLOCK < now.length; i++) {
        const at = i * BLOCK;
        if (!now.subarray(at, at + BLOCK).equals(loan.bytes.subarray(at, at + BLOCK))) {
          violations.push(`a lent view of block ${loan.first + i} changed while lent: ${decode(loan.bytes.subarray(at, at + BLOCK), loan.first + i)} became ${decode(now.subarray(at, at + BLOCK), loan.first + i)}`);
          break;
        }
      }
    }
    loan.pinned.release();
  };

  const reader = async (): Promise<void> => {
    const rng = new Prng(random.next());
    const held: Loan[] = [];
    for (let n = 0; n < REQUESTS && violations.length === 0; n++) {
      for (const loan of held.filter((l) => l.dueAfter <= n)) giveBack(loan);
      held.splice(0, held.length, ...held.filter((l) => l.dueAfter > n));
      issued();
      const first = rng.below(ORIGIN_BLOCKS);
      const run = Math.min(rng.chance(0.75) ? 1 + rng.below(8) : 17 + rng.below(24), ORIGIN_BLOCKS - first);
      const floors = Array.from({ length: run }, (_, i) => history[first + i]!.length - 1);
      const pinned = run * BLOCK > 64 * 1024 ? engine.readPinned(first * BLOCK, run * BLOCK) : null;
      if (pinned !== null) {
        const bytes = Buffer.concat(pinned.views);
        check('zero-copy read', bytes, first, floors);
        const loan = { pinned, bytes, first, dueAfter: n };
        // The reply is being sent: writes meanwhile must move lent pages, and eviction must pass them by.
        if (rng.chance(0.5)) {
          loan.dueAfter = n + 1 + rng.below(HELD_LOAN_REQUESTS_MAX);
          held.push(loan);
        } else {
          await turns(rng.below(40));
          giveBack(loan);
        }
        continue;
      }
      const target = Buffer.alloc(run * BLOCK);
      if (!engine.readNow(target, first * BLOCK)) await engine.read(target, first * BLOCK);
      check('read', target, first, floors);
    }
    for (const loan of held) giveBack(loan);
  };

  let running = true;
  const flusher = async (): Promise<void> => {
    const rng = new Prng(random.next());
    while (running) {
      await turns(20 + rng.below(200));
      if (rng.chance(0.7)) await engine.flush();
      else await engine.commit();
    }
  };

  let closed = false;
  let zeroCopyReads = 0;
  let moves = 0;
  try {
    const flushing = flusher();
    await Promise.all([...Array.from({ length: WRITERS }, (_, w) => writer(w)), ...Array.from({ length: READERS }, () => reader())]);
    running = false;
    await flushing;
    // Trimmed blocks are undefined: give them known content first.
    for (let block = 0; block < ORIGIN_BLOCKS; block++) {
      if (history[block]!.at(-1) !== TRIMMED) continue;
      await engine.write(content(block, 999_999), block * BLOCK);
      history[block]!.push(999_999);
    }
    await engine.flush();
    const image = Buffer.alloc(ORIGIN_BLOCKS * BLOCK);
    await engine.read(image, 0);
    const verify = (what: string, bytes: Buffer): void => {
      for (let block = 0; block < ORIGIN_BLOCKS && violations.length < 10; block++) {
        const observed = decode(bytes.subarray(block * BLOCK, (block + 1) * BLOCK), block);
        if (observed !== history[block]!.at(-1)) violations.push(`${what}: block ${block} is ${observed}, expected ${history[block]!.at(-1)}`);
      }
    };
    verify('final read', image);
    zeroCopyReads = engine.ramStats.zeroCopyReads;
    moves = engine.ram?.moves ?? 0;
    await engine.writebackAll();
    await engine.close();
    closed = true;
    const stored = Buffer.alloc(ORIGIN_BLOCKS * BLOCK);
    await origin.read(stored, 0);
    verify('origin after writeback and close', stored);
  } finally {
    running = false;
    if (!closed) await engine.close().catch(() => {});
    timers.drop();
  }
  return { seed, config, violations, zeroCopyReads, moves };
}
