// Checks shared by the policy tests (testing only; never imported by the product).
import { Replayer } from '../sim/replayer.js';

/**
 * Scan resistance: 64 hot blocks are used 20 times, then 2,000 blocks are read
 * once (a scan); returns how many of the hot blocks still hit afterwards.
 */
export function hitsAfterScan(replayer: Replayer): number {
  const HOT = 64;
  for (let round = 0; round < 20; round++) for (let block = 0; block < HOT; block++) replayer.access(block, false);
  for (let block = 1_000_000; block < 1_002_000; block++) replayer.access(block, false); // the scan
  let hits = 0;
  for (let block = 0; block < HOT; block++) if (replayer.access(block, false)) hits++;
  return hits;
}
