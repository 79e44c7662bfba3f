// Helpers for the writeback tests: an nbdkit origin behind the `stats` filter
// (what reached the origin, measured there), a cache over any origin, status
// and settings through the real CLI.
import * as fs from 'node:fs';
import { blockcache, blockcacheChecked } from './blockcache.js';
import { ProcessTarget, startNbdkit } from './nbd-servers.js';
import { makeTempDir } from './temp-dir.js';

export interface OriginWriteStats {
  readonly writeOps: number;
  readonly writeBytes: number;
}

export interface StatsOrigin {
  readonly uri: string;
  readonly target: ProcessTarget;
  /** Stops nbdkit (it writes the stats file at exit) and returns the write figures. */
  stopAndReadStats(): Promise<OriginWriteStats>;
}

const UNITS: Record<string, number> = { bytes: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };

/** Parses nbdkit stats' "write: N ops, T s, X MiB, ..." line. */
export function parseWriteStats(text: string): OriginWriteStats {
  const match = /^write: (\d+) ops, [\d.]+ s, ([\d.]+) (bytes|KiB|MiB|GiB)/m.exec(text);
  if (!match) return { writeOps: 0, writeBytes: 0 };
  return { writeOps: Number(match[1]), writeBytes: Math.round(Number(match[2]) * UNITS[match[3]!]!) };
}

/** `nbdkit --filter=stats memory SIZE` on a Unix socket. */
export async function startStatsOrigin(size = '256M'): Promise<StatsOrigin> {
  const statsDir = await makeTempDir('blockcache-stats-');
  const statsFile = statsDir.file('stats.txt');
  const target = await startNbdkit({ size, before: ['--filter=stats'], params: [`statsfile=${statsFile}`, 'statsappend=false'] });
  return {
    uri: target.uri,
    target,
    async stopAndReadStats() {
      await target.process.stop();
      const text = fs.existsSync(statsFile) ? fs.readFileSync(statsFile, 'utf8') : '';
      await target.stop();
      await statsDir.remove();
      return parseWriteStats(text);
    },
  };
}

export async function statusOf(control: string): Promise<Record<string, number>> {
  return JSON.parse((await blockcacheChecked(['status', '--control', control, '--json'])).stdout) as Record<string, number>;
}

export async function setSettings(control: string, ...assignments: string[]): Promise<Record<string, string>> {
  return JSON.parse((await blockcacheChecked(['set', '--control', control, '--json', ...assignments])).stdout) as Record<string, string>;
}

export { blockcache, blockcacheChecked };
