// The one place where errors cross the NBD edge, in both directions.
//
// Server side: a BlockcacheError thrown by a device becomes an NBD errno.
// Client side: an errno from a server becomes a BlockcacheError with a code.
// Pure functions; no state.
import { BlockcacheError, ErrorCode, isBlockcacheError } from '../stdx/errors.js';
import {
  NBD_EINVAL, NBD_EIO, NBD_ENOMEM, NBD_ENOSPC, NBD_ENOTSUP, NBD_EOVERFLOW, NBD_EPERM, NBD_ESHUTDOWN,
  nbdErrnoName,
} from './protocol.js';

/**
 * Maps a device error to the errno sent to the client. ENOTSUP is only legal as
 * the answer to a FAST_ZERO request; anywhere else it becomes EINVAL (as nbdkit does).
 */
export function errnoFromError(error: unknown, fastZero: boolean): number {
  if (!isBlockcacheError(error)) return NBD_EIO;
  switch (error.code) {
    case 'EIO': return NBD_EIO;
    case 'EINVAL': return NBD_EINVAL;
    case 'ENOSPC': return NBD_ENOSPC;
    case 'ENOTSUP': return fastZero ? NBD_ENOTSUP : NBD_EINVAL;
    case 'ESHUTDOWN': return NBD_ESHUTDOWN;
    default: return NBD_EIO;
  }
}

/** Maps a server's errno to a BlockcacheError code (unknown values are EINVAL, as the spec says). */
export function codeFromErrno(errno: number): ErrorCode {
  switch (errno) {
    case NBD_EIO: return 'EIO';
    case NBD_EPERM: return 'EIO';
    case NBD_ENOMEM: return 'EIO';
    case NBD_ENOSPC: return 'ENOSPC';
    case NBD_ENOTSUP: return 'ENOTSUP';
    case NBD_ESHUTDOWN: return 'ESHUTDOWN';
    case NBD_EOVERFLOW: return 'EINVAL';
    default: return 'EINVAL';
  }
}

export function errorFromErrno(errno: number, what: string, message?: string): BlockcacheError {
  const detail = message !== undefined && message.length > 0 ? `: ${message}` : '';
  return new BlockcacheError(codeFromErrno(errno), `${what}: server replied ${nbdErrnoName(errno)}${detail}`);
}
