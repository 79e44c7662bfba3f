// The files one bench run works on: a temporary directory (removed at the end),
// origin images with non-repeating content, and cache devices sized for an
// exact number of cache blocks.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomFillSync } from 'node:crypto';
import { blockcacheCli } from './servers.js';

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

/** On-disk layout constants of the cache device (docs/ON_DISK_FORMAT.md). */
const SUPERBLOCK_AREA_BYTES = 2 * 4096;
const RECORD_BYTES = 32;
const METADATA_PAGE_BYTES = 4096;

function roundUp(value: number, multiple: number): number {
  return Math.ceil(value / multiple) * multiple;
}

/** Bytes a cache device needs to hold exactly `cacheBlocks` blocks. */
export function cacheDeviceBytes(cacheBlocks: number, blockBytes: number): number {
  const metadataBytes = roundUp(cacheBlocks * RECORD_BYTES, METADATA_PAGE_BYTES);
  return roundUp(SUPERBLOCK_AREA_BYTES + metadataBytes, blockBytes) + cacheBlocks * blockBytes;
}

export interface Workspace {
  readonly directory: string;
  file(name: string): string;
  remove(): void;
}

export function createWorkspace(keep: boolean): Workspace {
  const base = process.env.BENCH_TMPDIR ?? os.tmpdir();
  const directory = fs.mkdtempSync(path.join(base, 'blockcache-bench-'));
  return {
    directory,
    file: (name) => path.join(directory, name),
    remove: () => { if (!keep) fs.rmSync(directory, { recursive: true, force: true }); },
  };
}

/** Writes `sizeBytes` of data that differs in every 4 KiB block (a random slab, stamped per block). */
export function writeOriginImage(file: string, sizeBytes: number): void {
  const slab = Buffer.allocUnsafe(16 * MiB);
  randomFillSync(slab);
  const fd = fs.openSync(file, 'w');
  try {
    for (let at = 0; at < sizeBytes; at += slab.length) {
      const length = Math.min(slab.length, sizeBytes - at);
      for (let block = 0; block < length; block += 4 * KiB) slab.writeDoubleLE(at + block, block);
      fs.writeSync(fd, slab, 0, length, at);
    }
  } finally {
    fs.closeSync(fd);
  }
}

export function sparseFile(file: string, sizeBytes: number): void {
  fs.closeSync(fs.openSync(file, 'w'));
  fs.truncateSync(file, sizeBytes);
}

/** A fresh sparse cache device formatted for `origin`. */
export function createCache(file: string, origin: string, options: { cacheBlocks: number; blockBytes?: number; mode: string; assoc?: string }): void {
  const blockBytes = options.blockBytes ?? 4 * KiB;
  sparseFile(file, cacheDeviceBytes(options.cacheBlocks, blockBytes));
  blockcacheCli(['create', '--cache', file, '--origin', origin, '--mode', options.mode, '--block-size', String(blockBytes),
    ...(options.assoc !== undefined ? ['--assoc', options.assoc] : [])]);
}

export function formatSize(bytes: number): string {
  if (bytes >= GiB && bytes % GiB === 0) return `${bytes / GiB} GiB`;
  if (bytes >= MiB && bytes % MiB === 0) return `${bytes / MiB} MiB`;
  return `${bytes / KiB} KiB`;
}
