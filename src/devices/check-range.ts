import { BlockcacheError } from '../stdx/errors.js';

/**
 * Validates a byte range against a device size. Writes past the end are ENOSPC
 * (as NBD wants), everything else out of range is EINVAL.
 */
export function checkRange(sizeBytes: number, offsetBytes: number, lengthBytes: number, isWrite: boolean): void {
  if (!Number.isSafeInteger(offsetBytes) || !Number.isSafeInteger(lengthBytes) || offsetBytes < 0 || lengthBytes < 0) {
    throw new BlockcacheError('EINVAL', `invalid range offset=${offsetBytes} length=${lengthBytes}`);
  }
  if (offsetBytes > sizeBytes || lengthBytes > sizeBytes - offsetBytes) {
    throw new BlockcacheError(isWrite ? 'ENOSPC' : 'EINVAL',
      `range ${offsetBytes}+${lengthBytes} is past the end of the device (${sizeBytes} bytes)`);
  }
}
