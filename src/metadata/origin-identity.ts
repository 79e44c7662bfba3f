// Origin identity: what a cache records about its origin at create and clean
// shutdown, and the check at open (CONTRACT.md durability rule 6).
//
// The fingerprint is a CRC-32C over sampled regions of the origin: its first
// and last 64 KiB and FINGERPRINT_SAMPLES blocks spread evenly between. It is
// taken when the cache is created and when it shuts down cleanly (the origin is
// then exactly as blockcache left it), and is invalid while the cache runs.
import { BlockDevice } from '../devices/block-device.js';
import { KiB } from '../constants.js';
import { crc32c } from '../stdx/checksum.js';
import { OriginIdentity } from '../format/superblock.js';

/** Bytes sampled at each end of the origin (partition tables, file-system superblocks live there). */
export const FINGERPRINT_EDGE_BYTES = 64 * KiB;
/** Evenly spread 4 KiB samples between the edges. */
export const FINGERPRINT_SAMPLES = 14;
const SAMPLE_BYTES = 4 * KiB;

export async function fingerprintOrigin(origin: BlockDevice): Promise<number> {
  const size = origin.sizeBytes;
  const regions: Array<[number, number]> = [];
  const edge = Math.min(FINGERPRINT_EDGE_BYTES, size);
  regions.push([0, edge], [size - edge, edge]);
  if (size > 2 * FINGERPRINT_EDGE_BYTES + SAMPLE_BYTES) {
    const span = size - 2 * FINGERPRINT_EDGE_BYTES - SAMPLE_BYTES;
    for (let i = 0; i < FINGERPRINT_SAMPLES; i++) {
      const offset = FINGERPRINT_EDGE_BYTES + Math.floor((span * i) / (FINGERPRINT_SAMPLES - 1) / SAMPLE_BYTES) * SAMPLE_BYTES;
      regions.push([offset, SAMPLE_BYTES]);
    }
  }
  const buffers = await Promise.all(regions.map(async ([offset, length]) => {
    const buffer = Buffer.alloc(length);
    await origin.read(buffer, offset);
    return buffer;
  }));
  let crc = 0;
  for (const buffer of buffers) crc = crc32c(buffer, crc);
  return crc;
}

/** Where an origin device lives (st_dev/st_ino for local files and block devices, 0 for NBD). */
export interface OriginLocation {
  readonly name: string;
  readonly deviceId: number;
  readonly inode: number;
}

export type IdentityVerdict =
  | { readonly kind: 'same' }
  | { readonly kind: 'wrong-size'; readonly message: string }
  | { readonly kind: 'changed'; readonly message: string };

/**
 * Compares a recorded identity with the origin found at open. `relocated` is
 * true when the user named the origin explicitly (--origin): then a different
 * device is accepted if size and content fingerprint match.
 */
export function compareIdentity(
  recorded: OriginIdentity, location: OriginLocation, sizeBytes: number, fingerprint: number | undefined, relocated: boolean,
): IdentityVerdict {
  if (recorded.sizeBytes !== sizeBytes) {
    return { kind: 'wrong-size', message: `origin ${location.name} has ${sizeBytes} bytes but the cache was created for ${recorded.sizeBytes} bytes` };
  }
  const sameDevice = recorded.deviceId === location.deviceId && recorded.inode === location.inode;
  if (!sameDevice && !relocated) {
    return { kind: 'changed', message: `origin ${location.name} is not the device the cache was created for (${recorded.name})` };
  }
  if (!sameDevice && !recorded.fingerprintValid) {
    return { kind: 'changed', message: `cannot prove ${location.name} is the origin the cache was created for (${recorded.name}): the cache was not shut down cleanly` };
  }
  if (recorded.fingerprintValid && fingerprint !== undefined && fingerprint !== recorded.fingerprint) {
    return { kind: 'changed', message: `origin ${location.name} was modified while the cache was offline (content fingerprint differs)` };
  }
  return { kind: 'same' };
}
