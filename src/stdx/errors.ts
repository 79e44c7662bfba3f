// Operating errors with stable codes. Callers match on `code`; only the NBD edge
// maps them to errnos and only the CLI maps them to messages and exit codes.

export type ErrorCode =
  | 'EIO'            // a device read or write failed
  | 'EINVAL'         // a request or argument is invalid
  | 'ENOSPC'         // a write past the end of a device
  | 'ENOTSUP'        // an operation the device cannot do (e.g. fast zero)
  | 'ESHUTDOWN'      // the engine or server is shutting down
  | 'BAD_ARGUMENT'   // CLI or library argument out of range
  | 'NOT_A_CACHE'    // the cache device holds no blockcache superblock
  | 'CORRUPT'        // superblock or metadata failed validation
  | 'NEWER_VERSION'  // written by a newer blockcache
  | 'EXISTS'         // create over an existing cache without --force
  | 'DIRTY_DATA'     // refusing to discard dirty blocks
  | 'ORIGIN_MISMATCH'// origin identity differs from the one recorded
  | 'NBD_PROTOCOL'   // an NBD peer broke the protocol
  | 'NBD_REFUSED'    // an NBD server refused the export or option
  | 'DEVICE_OPEN';   // a device could not be opened

export class BlockcacheError extends Error {
  override name = 'BlockcacheError';
  constructor(readonly code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export function isBlockcacheError(error: unknown, code?: ErrorCode): error is BlockcacheError {
  return error instanceof BlockcacheError && (code === undefined || error.code === code);
}

/** Wraps a Node system error (errno) into a BlockcacheError with a stable code. */
export function fromSystemError(error: unknown, what: string): BlockcacheError {
  if (error instanceof BlockcacheError) return error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const message = `${what}: ${(error as Error | undefined)?.message ?? String(error)}`;
  switch (code) {
    case 'ENOSPC':
    case 'EFBIG':
    case 'EDQUOT':
      return new BlockcacheError('ENOSPC', message, { cause: error });
    case 'EOPNOTSUPP':
    case 'ENOTSUP':
      return new BlockcacheError('ENOTSUP', message, { cause: error });
    case 'EINVAL':
      return new BlockcacheError('EINVAL', message, { cause: error });
    default:
      return new BlockcacheError('EIO', message, { cause: error });
  }
}
