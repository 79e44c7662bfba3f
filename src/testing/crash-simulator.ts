// The deterministic crash simulator: drives the real engine over two crash
// devices (src/testing/crash-device.ts) with random concurrent requests,
// crashes both devices at a random instant, recovers with openCache, and checks
// CONTRACT.md's durability rules against a reference model. Everything random
// comes from one seed, device latency is counted in microtask turns, and the
// engine's background work (paced writeback, commits, the RAM tier's writer)
// runs on virtual time (virtual-time.ts), so a failure replays exactly:
// `node dist/src/testing/sim-main.js --seed S`.
// Testing only; never imported by product code.
//
// The model. Every sector (512 bytes) an operation writes gets content that
// describes itself: magic, sector number, a version number unique to the
// write, and a checksum (sectorContent). For each sector the model keeps its
// history of acknowledged versions (index 0 is its content at the start of the
// cycle), the durable floor (the newest history entry acknowledged before a
// completed FLUSH, or written with FUA: rule 1), and the version of a write in
// flight. TRIM adds a wildcard entry (zeroes or any version of that sector);
// WRITE_ZEROES adds the zero version.
//
//   while running   a read returns the newest acknowledged version (or the
//                   in-flight one, if a write overlapped the read)
//   after a crash   a sector reads as any history entry from the floor on, or
//                   the version in flight (rule 2); never another sector's data
//                   or bytes nobody wrote. What is read then becomes the
//                   sector's only history entry: it must stay exactly that
//                   until written (rule 3) across reads, writeback, eviction,
//                   close and reopen — the "churn" phase checks it.
//   at the end      after writebackAll and close, the origin's durable image
//                   alone holds the expected content (rule 4).
//
// Concurrency: requests overlap freely except that no request is issued on a
// sector while a write (or trim, zero) to it is in flight, or a write while a
// read of it is; so "newest" is always well defined.
import { BlockDevice, DeviceCapabilities, WriteFlags, ZeroFlags } from '../devices/block-device.js';
import { createCache, openCache } from '../cache/open-cache.js';
import { CacheEngine } from '../cache/engine.js';
import type { CleanerSettings } from '../cache/cleaner.js';
import { CacheMode } from '../format/superblock.js';
import { dataOffsetFor } from '../format/layout.js';
import { POLICY_NAMES } from '../policies/registry.js';
import { SECTOR_BYTES, MiB } from '../constants.js';
import { crc32c } from '../stdx/checksum.js';
import { assert } from '../stdx/assert.js';
import { CrashDevice } from './crash-device.js';
import { Prng } from './prng.js';
import { Scope, VirtualTime } from './virtual-time.js';

/** Deliberately broken set-ups the simulator must catch (the checker's own test). */
export const CANARIES = ['lying-flush', 'lying-origin-flush', 'no-intent', 'ignore-fua', 'flush-noop', 'ram-flush-no-push', 'ram-keeps-stale'] as const;
/** Canaries that break the RAM tier (their seeds always run with it). */
const RAM_CANARIES: readonly CanaryName[] = ['ram-flush-no-push', 'ram-keeps-stale'];
export type CanaryName = (typeof CANARIES)[number];

/** Whether a seed runs with the RAM tier: 'random' draws it (half the seeds), 'on' always, 'off' never. */
export type RamChoice = 'random' | 'on' | 'off';
const RAM_SEED_SALT = 0x52414d31;
/** Salt of the dirty-pace draw's generator ('PACE'). */
const PACE_SEED_SALT = 0x50414345;
/** Salt of the draw of a cache device with synchronous reads ('SYNC'); its own generator, like the others. */
const SYNC_IO_SEED_SALT = 0x53594e43;
/** Salt of the readahead draw ('AHED'); its own generator, like the others. */
const READAHEAD_SEED_SALT = 0x41484544;
/** Salt of the draw of time-driven settings ('TIME'); its own generator, like the others. */
const TIME_SEED_SALT = 0x54494d45;

export interface SimulationOptions {
  readonly seed: number;
  /** RAM tier (default 'random'). */
  readonly ram?: RamChoice;
  /** Requests issued per crash cycle (the crash comes at a random point before). */
  readonly opsPerCycle?: number;
  readonly crashCycles?: number;
  readonly canary?: CanaryName;
  /** Caps the origin size (2 to 4 MiB otherwise): smaller runs faster, as in the test suite. */
  readonly originMiBMax?: number;
  readonly log?: (line: string) => void;
}

export interface SimulationResult {
  readonly seed: number;
  readonly config: string;
  readonly violations: string[];
  readonly cycles: number;
  readonly requests: number;
  readonly recoveredDirty: number;
  readonly tornSectors: number;
}

const OPS_PER_CYCLE_DEFAULT = 160;
const CRASH_CYCLES_DEFAULT = 3;
/** A seed stops after this many violations: the first ones are the telling ones. */
const VIOLATIONS_MAX = 8;
/** Any single awaited phase taking longer than this is a hang (deadlock) in the engine. */
const STALL_MS = 20_000;
const SECTOR_MAGIC = 0x53454331; // "1CES"
const VERSION_INITIAL = 0;
const ZERO = -1;
const WILDCARD = -2; // trimmed: zeroes or any version of this sector
const LOCATION = { name: 'sim-origin', deviceId: 7, inode: 7 };

// ---- self-describing sector content --------------------------------------------------

export function fillSector(target: Buffer, at: number, sector: number, version: number): void {
  target.writeUInt32LE(SECTOR_MAGIC, at);
  target.writeUInt32LE(sector, at + 4);
  target.writeUInt32LE(version, at + 8);
  let x = (Math.imul(sector, 2654435761) ^ Math.imul(version + 1, 40503) ^ 0x9e3779b9) >>> 0 || 1;
  for (let i = 16; i < SECTOR_BYTES; i += 4) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    target.writeUInt32LE(x, at + i);
  }
  target.writeUInt32LE(sectorChecksum(target, at), at + 12);
}

/** CRC-32C of the payload, seeded with the header's fields (one native call per sector). */
function sectorChecksum(source: Buffer, at: number): number {
  const seed = (source.readUInt32LE(at) ^ Math.imul(source.readUInt32LE(at + 4), 0x9e3779b1) ^ Math.imul(source.readUInt32LE(at + 8), 0x85ebca6b)) >>> 0;
  return crc32c(source.subarray(at + 16, at + SECTOR_BYTES), seed);
}

/** Initial origin images by size: every sector at version 0 (built once per size: the simulator runs many seeds). */
const initialImages = new Map<number, Buffer>();

function initialImage(originBytes: number): Buffer {
  let image = initialImages.get(originBytes);
  if (!image) {
    image = Buffer.alloc(originBytes);
    for (let sector = 0; sector < originBytes / SECTOR_BYTES; sector++) fillSector(image, sector * SECTOR_BYTES, sector, VERSION_INITIAL);
    initialImages.set(originBytes, image);
  }
  return image;
}

/** ZERO, a version (>= 0) of `sector`, or a description of what is wrong. */
export function decodeSector(source: Buffer, at: number, sector: number): number | string {
  let zero = true;
  for (let i = at; i < at + SECTOR_BYTES; i += 4) if (source.readUInt32LE(i) !== 0) { zero = false; break; }
  if (zero) return ZERO;
  if (source.readUInt32LE(at) !== SECTOR_MAGIC) return 'garbage (no sector magic)';
  if (sectorChecksum(source, at) !== source.readUInt32LE(at + 12)) return 'garbage (torn or mixed sector, checksum fails)';
  const owner = source.readUInt32LE(at + 4);
  if (owner !== sector) return `sector ${owner}'s data (version ${source.readUInt32LE(at + 8)})`;
  return source.readUInt32LE(at + 8);
}

function describe(entry: number): string {
  return entry === ZERO ? 'zeroes' : entry === WILDCARD ? 'trimmed' : `v${entry}`;
}

// ---- the reference model ------------------------------------------------------------------

class Model {
  /** Per sector: acknowledged entries in order; [0] is the content at the cycle's start. */
  history: number[][];
  floor: Int32Array;
  inflight: Int32Array; // version of the write in flight, or NONE
  readers: Int32Array;
  static readonly NONE = -3;

  constructor(readonly sectors: number) {
    this.history = Array.from({ length: sectors }, () => [VERSION_INITIAL]);
    this.floor = new Int32Array(sectors);
    this.inflight = new Int32Array(sectors).fill(Model.NONE);
    this.readers = new Int32Array(sectors);
  }

  canWrite(first: number, count: number): boolean {
    for (let s = first; s < first + count; s++) if (this.inflight[s] !== Model.NONE || this.readers[s]! > 0) return false;
    return true;
  }

  latestIndex(sector: number): number {
    return this.history[sector]!.length - 1;
  }

  /** Resets every sector to one exact entry (after a crash's first read). */
  settle(sector: number, entry: number): void {
    this.history[sector] = [entry];
    this.floor[sector] = 0;
    this.inflight[sector] = Model.NONE;
    this.readers[sector] = 0;
  }

  /** Whether `observed` is acceptable among `candidates`. */
  static accepts(candidates: Iterable<number>, observed: number | string): boolean {
    for (const entry of candidates) {
      if (entry === WILDCARD && typeof observed === 'number') return true;
      if (entry === observed) return true;
    }
    return false;
  }
}

// ---- a device wrapper for canaries ----------------------------------------------------

/** Passes everything through, except that flush() may lie. */
class CanaryDevice implements BlockDevice {
  readonly name: string;
  readonly sizeBytes: number;
  readonly capabilities: DeviceCapabilities;
  constructor(private readonly inner: BlockDevice, private readonly lyingFlush: boolean) {
    this.name = inner.name;
    this.sizeBytes = inner.sizeBytes;
    this.capabilities = inner.capabilities;
    if (inner.readNow) this.readNow = (target, offsetBytes) => inner.readNow!(target, offsetBytes);
    if (inner.writeNow) this.writeNow = (source, offsetBytes, flags) => inner.writeNow!(source, offsetBytes, flags);
  }
  readonly readNow?: (target: Buffer, offsetBytes: number) => boolean;
  readonly writeNow?: (source: Buffer, offsetBytes: number, flags?: WriteFlags) => boolean;
  read(target: Buffer, offsetBytes: number): Promise<void> { return this.inner.read(target, offsetBytes); }
  write(source: Buffer, offsetBytes: number, flags?: WriteFlags): Promise<void> { return this.inner.write(source, offsetBytes, flags); }
  flush(): Promise<void> { return this.lyingFlush ? Promise.resolve() : this.inner.flush(); }
  trim(offsetBytes: number, lengthBytes: number, flags?: WriteFlags): Promise<void> { return this.inner.trim(offsetBytes, lengthBytes, flags); }
  writeZeroes(offsetBytes: number, lengthBytes: number, flags?: ZeroFlags): Promise<void> { return this.inner.writeZeroes(offsetBytes, lengthBytes, flags); }
  close(): Promise<void> { return this.inner.close(); }
}

// ---- the simulation ---------------------------------------------------------------------------

interface Config {
  mode: CacheMode;
  blockBytes: number;
  originBytes: number;
  cacheBlocks: number;
  assoc: number | 'full';
  policy: string;
  dirtyThresholdPercent?: number;
  writebackInflightMax?: number;
  latencyTurnsMax: number;
  concurrencyMax: number;
  /** RAM tier size; 0 = off. */
  ramBytes: number;
  /** dirty-pace: 0 cleans at full speed while the simulated clients are busy; undefined = the default pace. */
  dirtyPaceMs?: number;
  /** The cache device offers readNow and writeNow (the engine's synchronous SSD-tier hits), as an inline FileDevice does. */
  synchronousCacheIo: boolean;
  /** Readahead window on read misses; 0 = off. */
  readaheadBytes: number;
  /** Virtual milliseconds that pass per request issued. */
  msPerRequest: number;
  /** Periodic commit interval on virtual time; 0 = none (the simulation's own commit requests only). */
  commitIntervalMs: number;
  /** writeback-rate in operations per second; undefined = unlimited. */
  writebackRateIops?: number;
  /** dirty-max-age; undefined = the default. */
  dirtyMaxAgeMs?: number;
  /** Share of requests that are extra whole-block trims (frees slots while writeback rounds wait: slot reuse). */
  extraTrimShare: number;
  /** Most FLUSH requests become commits: a flush ends a background round, so without this few rounds get far. */
  flushesRare: boolean;
}

function chooseConfig(random: Prng, originMiBMax: number): Config {
  const blockBytes = random.chance(0.5) ? 4096 : 16384;
  const originBytes = Math.min(2 + random.below(3), originMiBMax) * MiB;
  const originBlocks = originBytes / blockBytes;
  const cacheBlocks = Math.max(8, Math.floor(originBlocks / (4 + random.below(12))));
  const assocChoices: Array<number | 'full'> = [1, 2, 4, 8, 'full'];
  const lowThreshold = random.chance(0.5);
  return {
    mode: (['writeback', 'writeback', 'writethrough', 'writearound'] as const)[random.below(4)]!,
    blockBytes,
    originBytes,
    cacheBlocks,
    assoc: assocChoices[random.below(assocChoices.length)]!,
    policy: POLICY_NAMES[random.below(POLICY_NAMES.length)]!,
    dirtyThresholdPercent: lowThreshold ? random.below(6) : undefined,
    writebackInflightMax: random.chance(0.5) ? 1 + random.below(8) : undefined,
    latencyTurnsMax: random.below(4) * 4,
    concurrencyMax: 1 + random.below(8),
    ramBytes: 0,
    synchronousCacheIo: false,
    readaheadBytes: 0,
    msPerRequest: 0,
    commitIntervalMs: 0,
    extraTrimShare: 0,
    flushesRare: false,
  };
}

/**
 * The RAM tier is drawn from its own generator (seeded from the seed), so adding
 * it left every other draw of a seed as it was: old seeds replay the same set-up.
 */
function chooseRamBytes(seed: number, config: Config, ram: RamChoice): number {
  if (ram === 'off') return 0;
  const random = new Prng((seed ^ RAM_SEED_SALT) >>> 0);
  if (ram === 'random' && random.chance(0.5)) return 0;
  // From one page (constant eviction, dirty bound hit at once) to as many pages as the cache has blocks.
  return config.blockBytes * (1 + random.below(config.cacheBlocks));
}

/**
 * Half the seeds clean at full speed under load (as every seed did before pacing existed), half
 * at the default pace. Its own generator, as for the RAM tier: every other draw stays as it was.
 */
function chooseDirtyPace(seed: number): number | undefined {
  return new Prng((seed ^ PACE_SEED_SALT) >>> 0).chance(0.5) ? 0 : undefined;
}

/** Half the seeds read ahead, over a window of 2 to 32 blocks; half do not. */
function chooseReadahead(seed: number, blockBytes: number): number {
  const random = new Prng((seed ^ READAHEAD_SEED_SALT) >>> 0);
  return random.chance(0.5) ? 0 : blockBytes * 2 ** (1 + random.below(5));
}

/**
 * Time-driven settings, from their own generator (old seeds keep every other draw). Background
 * work runs on virtual time: rounds paced to a short dirty-pace or a low writeback-rate wait
 * between their runs while requests go on; commits and age rounds come from timers.
 */
function chooseTiming(seed: number, config: Config): void {
  const random = new Prng((seed ^ TIME_SEED_SALT) >>> 0);
  config.msPerRequest = [0.02, 0.1, 0.5, 2][random.below(4)]!;
  config.commitIntervalMs = random.chance(0.5) ? 0 : 1 + random.below(50);
  // A rate under which each background run waits for a few to a few dozen requests: a crash cycle
  // is at most OPS_PER_CYCLE_DEFAULT requests, so a slower rate would let a round write one run per cycle.
  if (random.chance(0.6)) config.writebackRateIops = Math.ceil(1000 / (config.msPerRequest * (3 + random.below(58))));
  if (random.chance(0.3)) config.dirtyMaxAgeMs = 5 + random.below(200);
  // Besides full speed and the default 30 s: a short pace, which drives most rounds' writes apart.
  if (config.dirtyPaceMs === undefined && random.chance(0.5)) config.dirtyPaceMs = 20 + random.below(500);
  if (random.chance(0.4)) config.extraTrimShare = (5 + random.below(20)) / 100;
  config.flushesRare = random.chance(0.5);
}

class Violation extends Error {}

export class CrashSimulation {
  private readonly random: Prng;
  private readonly config: Config;
  private readonly model: Model;
  private readonly violations: string[] = [];
  private cache!: CrashDevice;
  private origin!: CrashDevice;
  private engine!: CacheEngine;
  private cycle = 0;
  private nextVersion = 1;
  private requests = 0;
  private recoveredDirty = 0;
  private tornSectors = 0;
  private readonly log: (line: string) => void;
  private completions = 0;
  private readonly time = new VirtualTime(() => this.requests + this.completions);
  /** The current engine's timers: dropped when it crashes. */
  private timers: Scope | undefined;

  constructor(private readonly options: SimulationOptions) {
    this.random = new Prng(options.seed);
    this.config = chooseConfig(this.random, options.originMiBMax ?? 4);
    const ram = options.canary !== undefined && RAM_CANARIES.includes(options.canary) ? 'on' : options.ram ?? 'random';
    this.config.ramBytes = chooseRamBytes(options.seed, this.config, ram);
    this.config.dirtyPaceMs = chooseDirtyPace(options.seed);
    this.config.synchronousCacheIo = new Prng((options.seed ^ SYNC_IO_SEED_SALT) >>> 0).chance(0.5);
    this.config.readaheadBytes = chooseReadahead(options.seed, this.config.blockBytes);
    chooseTiming(options.seed, this.config);
    this.model = new Model(this.config.originBytes / SECTOR_BYTES);
    this.log = options.log ?? (() => {});
  }

  get configText(): string {
    const c = this.config;
    return `mode=${c.mode} block=${c.blockBytes / 1024}K origin=${c.originBytes / MiB}MiB cacheBlocks=${c.cacheBlocks} assoc=${c.assoc} `
      + `policy=${c.policy} dirtyThreshold=${c.dirtyThresholdPercent ?? 'default'} writebackInflight=${c.writebackInflightMax ?? 'default'} `
      + `dirtyPace=${c.dirtyPaceMs ?? 'default'} syncCacheIo=${c.synchronousCacheIo} readahead=${c.readaheadBytes / c.blockBytes} `
      + `latency=${c.latencyTurnsMax} concurrency=${c.concurrencyMax} ram=${c.ramBytes / c.blockBytes} msPerRequest=${c.msPerRequest} `
      + `commitInterval=${c.commitIntervalMs} writebackIops=${c.writebackRateIops ?? 'unlimited'} dirtyMaxAge=${c.dirtyMaxAgeMs ?? 'default'} `
      + `extraTrims=${c.extraTrimShare} flushesRare=${c.flushesRare}`
      + `${this.options.canary ? ` canary=${this.options.canary}` : ''}`;
  }

  async run(): Promise<SimulationResult> {
    try {
      await this.setUp();
      const cycles = this.options.crashCycles ?? CRASH_CYCLES_DEFAULT;
      for (this.cycle = 1; this.cycle <= cycles; this.cycle++) {
        await this.runUntilCrash();
        await this.recoverAndVerify();
        await this.churnAndRecheck();
      }
      await this.finalCheck();
    } catch (error) {
      if (!(error instanceof Violation)) this.violations.push(`cycle ${this.cycle}: unexpected failure: ${(error as Error).stack ?? error}`);
    }
    return {
      seed: this.options.seed, config: this.configText, violations: this.violations, cycles: this.cycle - 1,
      requests: this.requests, recoveredDirty: this.recoveredDirty, tornSectors: this.tornSectors,
    };
  }

  private violation(message: string): void {
    this.violations.push(`cycle ${this.cycle}: ${message}`);
    if (this.violations.length >= VIOLATIONS_MAX) throw new Violation(message);
  }

  private wrap(device: CrashDevice, role: 'cache' | 'origin'): BlockDevice {
    const canary = this.options.canary;
    if (canary === 'lying-flush' && role === 'cache') return new CanaryDevice(device, true);
    if (canary === 'lying-origin-flush' && role === 'origin') return new CanaryDevice(device, true);
    return device;
  }

  private deviceOptions(name: string) {
    return { name, prng: new Prng(this.random.next()), latencyTurnsMax: this.config.latencyTurnsMax };
  }

  private async setUp(): Promise<void> {
    const c = this.config;
    this.origin = new CrashDevice(c.originBytes, this.deviceOptions('sim-origin'), initialImage(c.originBytes));
    const cacheBytes = dataOffsetFor(c.cacheBlocks, c.blockBytes) + c.cacheBlocks * c.blockBytes;
    this.cache = new CrashDevice(cacheBytes, { ...this.deviceOptions('sim-cache'), synchronousIo: c.synchronousCacheIo });
    await createCache({ cache: this.wrap(this.cache, 'cache'), origin: this.wrap(this.origin, 'origin'), originLocation: LOCATION,
      mode: c.mode, blockBytes: c.blockBytes, assoc: c.assoc, policy: c.policy });
    await this.open('create');
  }

  private async open(why: string): Promise<void> {
    const c = this.config;
    const settings: Partial<CleanerSettings> = {};
    if (c.dirtyThresholdPercent !== undefined) settings.dirtyThresholdPercent = c.dirtyThresholdPercent;
    if (c.writebackInflightMax !== undefined) settings.writebackInflightMax = c.writebackInflightMax;
    if (c.dirtyPaceMs !== undefined) settings.dirtyPaceMs = c.dirtyPaceMs;
    if (c.writebackRateIops !== undefined) settings.writebackRateIops = c.writebackRateIops;
    if (c.dirtyMaxAgeMs !== undefined) settings.dirtyMaxAgeMs = c.dirtyMaxAgeMs;
    this.timers?.drop();
    this.timers = this.time.scope();
    let opened;
    try {
      opened = await this.deadline(openCache({ cache: this.wrap(this.cache, 'cache'), origin: this.wrap(this.origin, 'origin'),
        originLocation: LOCATION, settings, commitIntervalMs: c.commitIntervalMs, ramBytes: c.ramBytes, readaheadBytes: c.readaheadBytes,
        time: this.timers }), `openCache after ${why}`);
    } catch (error) {
      if (error instanceof Violation) throw error;
      this.violations.push(`cycle ${this.cycle}: openCache after ${why} failed: ${(error as Error).message}`);
      throw new Violation('open failed');
    }
    this.engine = opened.engine;
    this.recoveredDirty += opened.report.keptDirty;
    this.log(`cycle ${this.cycle}: opened after ${why}: kept ${opened.report.keptDirty} dirty, ${opened.report.keptClean} clean, freed ${opened.report.freed}`);
    this.applyEngineCanary();
  }

  private applyEngineCanary(): void {
    const engine = this.engine as unknown as Record<string, unknown>;
    switch (this.options.canary) {
      case 'no-intent':
        engine['ensureIntent'] = () => undefined;
        break;
      case 'ignore-fua': {
        const write = this.engine.write.bind(this.engine);
        engine['write'] = (source: Buffer, offsetBytes: number) => write(source, offsetBytes);
        break;
      }
      case 'flush-noop':
        engine['flush'] = async () => {};
        break;
      case 'ram-flush-no-push': // FLUSH commits without pushing dirty RAM pages down
        (this.engine.ramWriter as unknown as Record<string, unknown>)['pushAll'] = async () => {};
        break;
      case 'ram-keeps-stale': // trims and zeroes leave the RAM copy in place
        if (this.engine.ram) (this.engine.ram as unknown as Record<string, unknown>)['drop'] = () => {};
        break;
      default:
        break;
    }
  }

  private async deadline<T>(promise: Promise<T>, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const stall = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Violation(what)), STALL_MS);
    });
    try {
      return await Promise.race([promise, stall]);
    } catch (error) {
      if (error instanceof Violation) {
        this.violations.push(`cycle ${this.cycle}: ${what} did not finish in ${STALL_MS} ms (hang or deadlock)`);
      }
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  // ---- the running phase ------------------------------------------------------------------------

  /** Issues random concurrent requests, then crashes both devices at a random instant. */
  private async runUntilCrash(): Promise<void> {
    const opsPlanned = this.options.opsPerCycle ?? OPS_PER_CYCLE_DEFAULT;
    const ops = 1 + this.random.below(opsPlanned);
    const concurrency = 1 + this.random.below(this.config.concurrencyMax);
    const cycle = this.cycle;
    const inflight = new Set<Promise<void>>();
    for (let op = 0; op < ops && this.violations.length === 0; op++) {
      while (inflight.size >= concurrency) await this.deadline(Promise.race(inflight), 'waiting for a request');
      this.time.advance(this.config.msPerRequest);
      const request = this.issue(cycle);
      if (!request) continue;
      const tracked = request.finally(() => inflight.delete(tracked));
      inflight.add(tracked);
      if (this.random.chance(0.3)) await this.turns(this.random.below(8));
    }
    // Sometimes the power fails during a clean shutdown (after the requests drain).
    const closing = this.random.chance(0.15);
    if (closing) void this.engine.close().catch(() => {});
    // Let some requests finish, some stay in flight; then lose power.
    await this.turns(this.random.below(closing ? 400 : 64));
    const crashRandom = new Prng(this.random.next());
    this.timers?.drop(); // a dead process's timers never fire
    const cachePending = this.cache.pendingSectors;
    const originPending = this.origin.pendingSectors;
    this.cache = this.cache.crash(crashRandom);
    this.origin = this.origin.crash(crashRandom);
    this.tornSectors += cachePending + originPending;
    this.log(`cycle ${cycle}: crash after ${ops} requests${closing ? ' during close' : ''}, ${inflight.size} in flight, ${cachePending}+${originPending} sectors pending`);
  }

  /** Sometimes the power fails again while recovery runs: recovery must survive its own crash. */
  private async maybeCrashDuringRecovery(): Promise<void> {
    if (!this.random.chance(0.2)) return;
    const timers = this.time.scope();
    const attempt = openCache({ cache: this.wrap(this.cache, 'cache'), origin: this.wrap(this.origin, 'origin'),
      originLocation: LOCATION, commitIntervalMs: 0, time: timers });
    attempt.catch(() => {});
    await this.turns(this.random.below(300));
    timers.drop();
    const crashRandom = new Prng(this.random.next());
    this.cache = this.cache.crash(crashRandom);
    this.origin = this.origin.crash(crashRandom);
    this.log(`cycle ${this.cycle}: crash during recovery`);
  }

  private async turns(count: number): Promise<void> {
    for (let i = 0; i < count; i++) await null;
  }

  /** Picks and starts one request; undefined when the chosen range is busy. */
  private issue(cycle: number): Promise<void> | undefined {
    this.requests++;
    if (this.config.extraTrimShare > 0 && this.random.chance(this.config.extraTrimShare)) return this.issueZeroOrTrim(cycle, 'trim', true);
    const kind = this.random.below(100);
    if (kind < 38) return this.issueWrite(cycle, false);
    if (kind < 43) return this.issueWrite(cycle, true);
    if (kind < 73) return this.issueRead(cycle);
    if (kind < 80) return this.config.flushesRare && this.random.chance(0.9) ? this.guard(cycle, 'commit', this.engine.commit()) : this.issueFlush(cycle);
    if (kind < 84) return this.issueZeroOrTrim(cycle, 'zero');
    if (kind < 88) return this.issueZeroOrTrim(cycle, 'trim');
    if (kind < 93) {
      const { first, count } = this.pickRange();
      return this.guard(cycle, 'prefetch', this.engine.cache(first * SECTOR_BYTES, count * SECTOR_BYTES));
    }
    return this.guard(cycle, 'commit', this.engine.commit()); // what the periodic commit timer does
  }

  /** A sector range: whole blocks, a part of a block (sub-block writes), or a few sectors; biased to a hot region. */
  private pickRange(wholeBlocks = false): { first: number; count: number } {
    const sectors = this.model.sectors;
    const blockSectors = this.config.blockBytes / SECTOR_BYTES;
    const hot = this.random.chance(0.6);
    const span = hot ? Math.max(blockSectors * 8, Math.floor(sectors / 6)) : sectors;
    let first = this.random.below(span);
    let count: number;
    const shape = wholeBlocks ? 0 : this.random.below(3);
    if (shape === 0) {
      first -= first % blockSectors;
      count = blockSectors * (1 + this.random.below(3));
    } else if (shape === 1) count = 1 + this.random.below(blockSectors);
    else count = 1 + this.random.below(8);
    count = Math.min(count, sectors - first);
    return { first, count };
  }

  private issueWrite(cycle: number, fua: boolean): Promise<void> | undefined {
    const { first, count } = this.pickRange();
    if (!this.model.canWrite(first, count)) return undefined;
    const version = this.nextVersion++;
    const data = Buffer.allocUnsafe(count * SECTOR_BYTES);
    for (let i = 0; i < count; i++) {
      fillSector(data, i * SECTOR_BYTES, first + i, version);
      this.model.inflight[first + i] = version;
    }
    // As the NBD server does: the synchronous RAM path first, the ordinary one if it declines.
    const flags = fua ? { fua: true } : undefined;
    const done = this.engine.writeNow(data, first * SECTOR_BYTES, flags) ? Promise.resolve() : this.engine.write(data, first * SECTOR_BYTES, flags);
    return this.guard(cycle, `write v${version}`, done, () => this.acknowledge(first, count, version, fua));
  }

  private issueZeroOrTrim(cycle: number, kind: 'zero' | 'trim', wholeBlocks = false): Promise<void> | undefined {
    const { first, count } = this.pickRange(wholeBlocks);
    if (!this.model.canWrite(first, count)) return undefined;
    const entry = kind === 'zero' ? ZERO : WILDCARD;
    for (let s = first; s < first + count; s++) this.model.inflight[s] = entry;
    const done = kind === 'zero'
      ? this.engine.writeZeroes(first * SECTOR_BYTES, count * SECTOR_BYTES)
      : this.engine.trim(first * SECTOR_BYTES, count * SECTOR_BYTES);
    return this.guard(cycle, kind, done, () => this.acknowledge(first, count, entry, false));
  }

  private acknowledge(first: number, count: number, entry: number, fua: boolean): void {
    for (let s = first; s < first + count; s++) {
      const history = this.model.history[s]!;
      history.push(entry);
      this.model.inflight[s] = Model.NONE;
      if (fua) this.model.floor[s] = history.length - 1;
    }
  }

  private issueFlush(cycle: number): Promise<void> {
    const model = this.model;
    const covered = new Int32Array(model.sectors);
    for (let s = 0; s < model.sectors; s++) covered[s] = model.latestIndex(s);
    return this.guard(cycle, 'flush', this.engine.flush(), () => {
      for (let s = 0; s < model.sectors; s++) if (covered[s]! > model.floor[s]!) model.floor[s] = covered[s]!;
    });
  }

  private issueRead(cycle: number): Promise<void> {
    const { first, count } = this.pickRange();
    const model = this.model;
    const base = new Int32Array(count);
    const overlapping = new Int32Array(count);
    for (let i = 0; i < count; i++) {
      base[i] = model.latestIndex(first + i);
      overlapping[i] = model.inflight[first + i]!;
      model.readers[first + i]!++;
    }
    const target = Buffer.alloc(count * SECTOR_BYTES);
    const offset = first * SECTOR_BYTES;
    const done = this.engine.readNow(target, offset) ? Promise.resolve() : this.engine.read(target, offset);
    return this.guard(cycle, 'read', done, () => {
      for (let i = 0; i < count; i++) {
        const sector = first + i;
        model.readers[sector]!--;
        const observed = decodeSector(target, i * SECTOR_BYTES, sector);
        const candidates = model.history[sector]!.slice(base[i]!);
        if (overlapping[i] !== Model.NONE) candidates.push(overlapping[i]!);
        if (!Model.accepts(candidates, observed)) {
          this.violation(`read of sector ${sector} while running returned ${typeof observed === 'number' ? describe(observed) : observed}; expected ${candidates.map(describe).join(' or ')}`);
        }
      }
    });
  }

  /** Runs `onDone` if the request completes in this cycle; any error is a violation (no errors are injected). */
  private guard(cycle: number, what: string, request: Promise<void>, onDone?: () => void): Promise<void> {
    // A Violation thrown here is already recorded and the run loop stops on it: never an unhandled rejection.
    const recorded = (error: unknown) => {
      if (!(error instanceof Violation)) throw error;
    };
    return request.then(() => {
      this.completions++;
      if (cycle === this.cycle) onDone?.();
    }, (error: unknown) => {
      if (cycle === this.cycle) this.violation(`${what} failed: ${(error as Error).message}`);
    }).catch(recorded);
  }

  // ---- after the crash ------------------------------------------------------------------------------

  /** Recovery, then every sector must read as an entry allowed by rules 1 and 2; what it reads becomes the expectation. */
  private async recoverAndVerify(): Promise<void> {
    await this.maybeCrashDuringRecovery();
    await this.open('crash');
    const model = this.model;
    const image = await this.readEverything('post-crash read');
    for (let sector = 0; sector < model.sectors; sector++) {
      const observed = decodeSector(image, sector * SECTOR_BYTES, sector);
      const history = model.history[sector]!;
      const candidates = history.slice(model.floor[sector]!);
      if (model.inflight[sector] !== Model.NONE) candidates.push(model.inflight[sector]!);
      if (!Model.accepts(candidates, observed)) {
        const text = typeof observed === 'number' ? describe(observed) : observed;
        this.violation(`after recovery sector ${sector} (origin block ${Math.floor(sector * SECTOR_BYTES / this.config.blockBytes)}) reads ${text}; allowed ${candidates.map(describe).join(', ')} (durable floor ${describe(history[model.floor[sector]!]!)})`);
      }
      // A garbage sector is already reported; a wildcard keeps it from being reported again.
      model.settle(sector, typeof observed === 'number' ? observed : WILDCARD);
    }
  }

  private async readEverything(what: string): Promise<Buffer> {
    const image = Buffer.alloc(this.config.originBytes);
    const chunk = 256 * 1024;
    const reads: Promise<void>[] = [];
    for (let offset = 0; offset < image.length; offset += chunk) {
      reads.push(this.engine.read(image.subarray(offset, Math.min(offset + chunk, image.length)), offset));
    }
    try {
      await this.deadline(Promise.all(reads), what);
    } catch (error) {
      if (error instanceof Violation) throw error;
      this.violation(`${what} failed: ${(error as Error).message}`);
      throw new Violation(what);
    }
    return image;
  }

  /** Compares every sector with the model's newest entry (exactly, except trimmed sectors). */
  private checkExact(image: Buffer, what: string): void {
    for (let sector = 0; sector < this.model.sectors; sector++) {
      const observed = decodeSector(image, sector * SECTOR_BYTES, sector);
      const history = this.model.history[sector]!;
      const expected = history[history.length - 1]!;
      if (!Model.accepts([expected], observed)) {
        this.violation(`${what}: sector ${sector} (origin block ${Math.floor(sector * SECTOR_BYTES / this.config.blockBytes)}) reads ${typeof observed === 'number' ? describe(observed) : observed}; expected ${describe(expected)} (content changed without a write?)`);
      }
    }
  }

  /** Rule 3: reads, writes elsewhere, writeback, close and reopen must not change what was read. */
  private async churnAndRecheck(): Promise<void> {
    const cycle = this.cycle;
    const count = this.random.below(40);
    for (let i = 0; i < count; i++) {
      this.time.advance(this.config.msPerRequest);
      const request = this.issue(cycle);
      if (request) await this.deadline(request, 'churn request');
    }
    if (this.random.chance(0.5)) {
      await this.deadline(this.engine.writebackAll(), 'writebackAll');
      // Every block is clean now, so the origin alone holds the data (rule 4, before later writes can hide a misplaced one).
      this.checkExact(this.origin.currentImage(), 'origin after writebackAll');
    }
    this.checkExact(await this.readEverything('churn read'), 'after churn');
    if (this.random.chance(0.6)) {
      await this.deadline(this.engine.close(), 'close');
      await this.open('clean close');
      this.checkExact(await this.readEverything('read after clean reopen'), 'after clean close and reopen');
    }
  }

  /** Rule 4: after writebackAll and close, the origin's durable image alone holds the data. */
  private async finalCheck(): Promise<void> {
    await this.deadline(this.engine.writebackAll(), 'final writebackAll');
    if (this.engine.table.dirtyCount !== 0) this.violation(`${this.engine.table.dirtyCount} blocks still dirty after writebackAll`);
    await this.deadline(this.engine.close(), 'final close');
    this.checkExact(this.origin.durableImage(), 'origin after writebackAll and close');
    await this.open('final close');
    this.checkExact(await this.readEverything('final read'), 'after final reopen');
    await this.deadline(this.engine.close(), 'last close');
  }
}

export function runSimulation(options: SimulationOptions): Promise<SimulationResult> {
  assert(Number.isSafeInteger(options.seed) && options.seed >= 0, 'seed must be a non-negative integer');
  return new CrashSimulation(options).run();
}
