// For engine tests over real files: a 16 MiB origin file holding a known pattern and
// a 4 MiB cache file (read and written inline if asked), created in `directory`
// under `name` and opened as a cache of 4 KiB blocks. Not for production use.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FileDevice } from '../devices/file-device.js';
import { CacheMode } from '../format/superblock.js';
import { createCache, openCache } from '../cache/open-cache.js';

export const FILE_ENGINE_BLOCK_BYTES = 4096;
const ORIGIN_BYTES = 16 * 1024 * 1024;
const CACHE_BYTES = 4 * 1024 * 1024;

export interface FileEngineOptions {
  readonly inlineIo: boolean;
  readonly ramBytes: number;
  readonly mode?: CacheMode;
  readonly readaheadBytes?: number;
}

export async function openFileEngine(directory: string, name: string, options: FileEngineOptions) {
  const image = Buffer.alloc(ORIGIN_BYTES);
  for (let at = 0; at < ORIGIN_BYTES; at += 4) image.writeUInt32LE((at * 2654435761) >>> 0, at);
  const originPath = path.join(directory, `${name}-origin.img`);
  fs.writeFileSync(originPath, image);
  const origin = await FileDevice.open(originPath);
  const cache = await FileDevice.open(path.join(directory, `${name}-cache.img`), { createSizeBytes: CACHE_BYTES, inlineIo: options.inlineIo });
  const originLocation = { name: originPath, deviceId: 12, inode: 12 };
  await createCache({ cache, origin, originLocation, mode: options.mode ?? 'writeback', blockBytes: FILE_ENGINE_BLOCK_BYTES });
  const { engine } = await openCache({ cache, origin, originLocation, ramBytes: options.ramBytes, readaheadBytes: options.readaheadBytes });
  return { engine, image, cache, origin };
}
