// The engine against a reference model: random reads, writes (aligned and not),
// flushes, trims, zeroes and prefetches over memory devices, in every mode and
// at two block sizes, with warm restarts and a final writeback check. Reads may
// also borrow RAM pages (readPinned, as the NBD server sends large reads): the
// lent bytes must stay exactly what was read while later operations run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryDevice } from '../../src/devices/memory-device.js';
import { createCache, openCache } from '../../src/cache/open-cache.js';
import { CacheMode } from '../../src/format/superblock.js';
import { Prng } from '../../src/testing/prng.js';

const ORIGIN_BYTES = 8 * 1024 * 1024;
const location = { name: 'memory-origin', deviceId: 0, inode: 0 };

/** Runs one scenario; returns what the RAM tier did (block reads answered, block writes completed in RAM). */
async function scenario(mode: CacheMode, blockBytes: number, seed: number, ramBytes = 0): Promise<{ ramReadHits: number; ramAbsorbs: number; zeroCopyReads: number; moves: number }> {
  const random = new Prng(seed);
  const origin = new MemoryDevice(ORIGIN_BYTES);
  // A cache of ~1/8 of the origin, so random traffic evicts constantly.
  const cache = new MemoryDevice(1024 * 1024 + 64 * 1024);
  const reference = Buffer.alloc(ORIGIN_BYTES);
  const initial = Buffer.alloc(ORIGIN_BYTES);
  for (let i = 0; i < ORIGIN_BYTES; i += 4096) initial.writeUInt32LE(i, i);
  origin.writeSync(initial, 0);
  initial.copy(reference);
  await createCache({ cache, origin, originLocation: location, mode, blockBytes, assoc: 8, policy: 'lru' });
  const open = () => openCache({ cache, origin, originLocation: location, commitIntervalMs: 0, ramBytes });
  let { engine } = await open();
  let ramReadHits = 0;
  let ramAbsorbs = 0;
  let zeroCopyReads = 0;
  let moves = 0;
  const loans: { views: readonly Buffer[]; expected: Buffer; release: () => void; step: number; offset: number }[] = [];
  const giveBack = (count: number) => {
    for (const loan of loans.splice(0, count)) {
      assert.ok(Buffer.concat(loan.views).equals(loan.expected), `step ${loan.step}: lent RAM pages changed before they were given back`);
      loan.release();
    }
  };
  // As the NBD server calls the engine: the synchronous RAM paths first, the ordinary ones if they decline.
  const write = (data: Buffer, offset: number, fua: boolean) =>
    engine.writeNow(data, offset, { fua }) ? Promise.resolve() : engine.write(data, offset, { fua });
  const read = (target: Buffer, offset: number) => (engine.readNow(target, offset) ? Promise.resolve() : engine.read(target, offset));
  for (let step = 0; step < 600; step++) {
    const offset = random.below(ORIGIN_BYTES - 70000);
    const length = random.chance(0.5) ? 1 + random.below(70000) : 4096 * (1 + random.below(8));
    let aligned = random.chance(0.5) ? offset - (offset % 4096) : offset;
    const kind = random.below(100);
    // Aim some operations at bytes lent to a read that is still "being sent".
    if (loans.length > 0 && random.chance(0.3)) aligned = loans[random.below(loans.length)]!.offset + random.below(8192);
    if (kind < 40) {
      const data = random.bytes(length);
      await write(data, aligned, random.chance(0.05));
      data.copy(reference, aligned);
    } else if (kind < 60 && ramBytes > 0) {
      // An ordinary read first (it fills RAM), then the same range borrowed from RAM.
      const target = Buffer.alloc(length);
      await read(target, aligned);
      assert.ok(target.equals(reference.subarray(aligned, aligned + length)), `step ${step}: read ${aligned}+${length} differs`);
      const pinned = engine.readPinned(aligned, length);
      if (pinned !== null) {
        loans.push({ ...pinned, expected: Buffer.from(reference.subarray(aligned, aligned + length)), step, offset: aligned });
        zeroCopyReads++;
      }
    } else if (kind < 80) {
      const target = Buffer.alloc(length);
      await read(target, aligned);
      assert.ok(target.equals(reference.subarray(aligned, aligned + length)), `step ${step}: read ${aligned}+${length} differs`);
    } else if (kind < 85) {
      await engine.flush();
    } else if (kind < 90) {
      await engine.writeZeroes(aligned, length);
      reference.fill(0, aligned, aligned + length);
    } else if (kind < 93) {
      await engine.cache(aligned, length);
    } else if (kind < 96) {
      // Trimmed contents are undefined: re-write them so the model stays exact.
      await engine.trim(aligned, length);
      const data = random.bytes(length);
      await write(data, aligned, false);
      data.copy(reference, aligned);
    } else {
      giveBack(loans.length);
      moves += engine.ram?.moves ?? 0;
      await engine.close();
      ramReadHits += engine.ramStats.readHits;
      ramAbsorbs += engine.ramStats.writeAbsorbs;
      ({ engine } = await open());
    }
    if (random.chance(0.2)) giveBack(1 + random.below(3));
  }
  giveBack(loans.length);
  const all = Buffer.alloc(ORIGIN_BYTES);
  await read(all, 0);
  assert.ok(all.equals(reference), 'whole device differs from the model');
  await engine.writebackAll();
  assert.equal(engine.table.dirtyCount, 0);
  ramReadHits += engine.ramStats.readHits;
  ramAbsorbs += engine.ramStats.writeAbsorbs;
  await engine.close();
  const originContent = Buffer.alloc(ORIGIN_BYTES);
  origin.readSync(originContent, 0);
  assert.ok(originContent.equals(reference), 'origin is not exact after writeback');
  moves += engine.ram?.moves ?? 0;
  return { ramReadHits, ramAbsorbs, zeroCopyReads, moves };
}

for (const mode of ['writeback', 'writethrough', 'writearound'] as const) {
  for (const blockBytes of [4096, 65536]) {
    test(`engine ${mode} ${blockBytes / 1024}K blocks matches the model under random operations`, async () => {
      for (const seed of [1, 2, 3]) await scenario(mode, blockBytes, seed);
    });
    // RAM tiers of 3 blocks (constant eviction, the dirty bound hit at once) and of 1 MiB.
    test(`engine ${mode} ${blockBytes / 1024}K blocks with a RAM tier matches the model under random operations`, async () => {
      let ramReadHits = 0;
      let ramAbsorbs = 0;
      let zeroCopyReads = 0;
      let moves = 0;
      for (const [seed, ramBytes] of [[1, 3 * blockBytes], [2, 3 * blockBytes], [3, 3 * blockBytes], [4, 1024 * 1024], [5, 1024 * 1024]]) {
        const done = await scenario(mode, blockBytes, seed!, ramBytes);
        ramReadHits += done.ramReadHits;
        ramAbsorbs += done.ramAbsorbs;
        zeroCopyReads += done.zeroCopyReads;
        moves += done.moves;
      }
      // The scenarios really went through the RAM tier.
      assert.ok(ramReadHits > 0, 'no read was answered from RAM');
      assert.ok(zeroCopyReads > 0, 'no read borrowed RAM pages');
      assert.ok(moves > 0, 'no write met a lent page (copy on write untested)');
      if (mode === 'writeback') assert.ok(ramAbsorbs > 0, 'no write completed in RAM');
      else assert.equal(ramAbsorbs, 0, 'a write completed in RAM outside writeback mode');
    });
  }
}
