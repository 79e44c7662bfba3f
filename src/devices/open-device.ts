// Opens any device argument: a path to a regular file or block device, or an
// NBD URI. Also reports where the device lives, for origin identity checks.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BlockDevice } from './block-device.js';
import { FileDevice } from './file-device.js';
import { NbdDevice } from '../nbd/nbd-device.js';
import { isNbdUri } from '../nbd/uri.js';
import { OriginLocation } from '../metadata/origin-identity.js';
import { BlockcacheError } from '../stdx/errors.js';

export interface OpenedDevice {
  readonly device: BlockDevice;
  readonly location: OriginLocation;
}

export async function openDevice(spec: string, options: { createSizeBytes?: number; inlineIo?: boolean } = {}): Promise<OpenedDevice> {
  if (isNbdUri(spec)) {
    const device = await NbdDevice.connect(spec);
    return { device, location: { name: spec, deviceId: 0, inode: 0 } };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(spec)) {
    throw new BlockcacheError('DEVICE_OPEN', `${spec}: unsupported URI (use a path, nbd://HOST[:PORT]/EXPORT or nbd+unix:///EXPORT?socket=PATH)`);
  }
  const absolute = path.resolve(spec);
  if (options.createSizeBytes === undefined && !fs.existsSync(absolute)) {
    throw new BlockcacheError('DEVICE_OPEN', `${spec}: no such file or device`);
  }
  const device = await FileDevice.open(absolute, options);
  const stat = fs.statSync(absolute);
  return { device, location: { name: absolute, deviceId: stat.dev, inode: stat.ino } };
}
