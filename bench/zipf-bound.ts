// The slow-origin scenario's ceiling, from fio's own access sequence: how many
// distinct blocks fio's zipf:1.2 over 1 GiB touches, and so how many misses any
// cache must take (compulsory misses: a block never seen cannot be a hit).
//
// fio runs the scenario's pattern on its null engine (no I/O) and writes its
// iolog; this replays the offsets. When the distinct blocks touched stay below
// the cache's size, nothing is ever evicted, the replacement policy cannot
// matter, and every cache over the same origin takes the same misses. With the
// origin serving ORIGIN_IOPS one request at a time, the IOPS a cache can reach
// in a window is then at most ORIGIN_IOPS / (compulsory miss ratio in it).
//
// Run: npx tsc -p . && node dist/bench/zipf-bound.js [ACCESSES (1000000)]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { TOOL_ENV } from './support/servers.js';

const BLOCK_BYTES = 4096;
const ORIGIN_BYTES = 1024 ** 3;
const CACHE_BLOCKS = (256 * 1024 ** 2) / BLOCK_BYTES;
/** The slow origin: 2 ms per request, one at a time. */
const ORIGIN_IOPS = 500;
/** Points at which the distinct-block count is reported. */
const CHECKPOINTS = [20_000, 50_000, 100_000, 150_000, 300_000, 500_000, 1_000_000];

function main(): void {
  const accesses = Number(process.argv[2] ?? 1_000_000);
  if (!Number.isInteger(accesses) || accesses < 1000) throw new Error(`ACCESSES must be an integer ≥ 1000, not ${process.argv[2]}`);
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'blockcache-zipf-bound-'));
  try {
    const log = path.join(directory, 'iolog');
    const fio = spawnSync('fio', ['--name=zipf', '--ioengine=null', `--size=${ORIGIN_BYTES}`, `--io_size=${accesses * BLOCK_BYTES}`,
      '--rw=randread', `--bs=${BLOCK_BYTES}`, '--random_distribution=zipf:1.2', '--norandommap', `--write_iolog=${log}`],
    { env: TOOL_ENV, encoding: 'utf8' });
    if (fio.status !== 0) throw new Error(`fio failed: ${fio.stderr || fio.error?.message}`);
    const seen = new Uint8Array(ORIGIN_BYTES / BLOCK_BYTES);
    const firstSeenAt: number[] = []; // access index of each block's first access
    let count = 0;
    for (const line of fs.readFileSync(log, 'utf8').split('\n')) {
      // iolog v3: "<time> <file> read <offset> <length>"
      const fields = line.split(' ');
      if (fields[2] !== 'read') continue;
      const block = Number(fields[3]) / BLOCK_BYTES;
      if (seen[block] === 0) {
        seen[block] = 1;
        firstSeenAt.push(count);
      }
      count++;
    }
    const distinctBefore = (index: number): number => {
      let low = 0;
      let high = firstSeenAt.length;
      while (low < high) {
        const middle = (low + high) >> 1;
        if (firstSeenAt[middle]! < index) low = middle + 1;
        else high = middle;
      }
      return low;
    };
    process.stdout.write(`fio zipf:1.2 over ${ORIGIN_BYTES / 1024 ** 3} GiB of ${BLOCK_BYTES} B blocks, ${count} accesses; cache ${CACHE_BLOCKS} blocks\n`);
    process.stdout.write('accesses | distinct blocks | share of the cache | compulsory miss ratio since the previous line | IOPS bound at 500 origin IOPS\n');
    let previous = 0;
    for (const point of CHECKPOINTS.filter((value) => value <= count)) {
      const distinct = distinctBefore(point);
      const missRatio = (distinct - distinctBefore(previous)) / (point - previous);
      process.stdout.write(`${point} | ${distinct} | ${((100 * distinct) / CACHE_BLOCKS).toFixed(1)}% | ${(100 * missRatio).toFixed(1)}% | ${(ORIGIN_IOPS / missRatio).toFixed(0)}\n`);
      previous = point;
    }
  } finally {
    fs.rmSync(directory, { recursive: true, force: true });
  }
}

main();
