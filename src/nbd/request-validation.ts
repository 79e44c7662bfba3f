// Central validation of transmission requests: the single place that decides
// whether a request is well-formed for this session before any device sees it.
//
// Checks, in order: known command, flags valid for the command and advertised,
// read-only gating, meta-context gating, FLUSH shape, payload size, and bounds
// with overflow-safe arithmetic (an offset above Number.MAX_SAFE_INTEGER arrives
// here as Infinity and is out of range). Returns 0 or an NBD errno.
// Pure; no state.
import { NBD_PAYLOAD_BYTES_MAX } from '../constants.js';
import * as P from './protocol.js';

export interface ValidationContext {
  readonly sizeBytes: number;
  readonly transmissionFlags: number;
  readonly baseAllocationContextId: number;
}

const FLAGS_READ = P.NBD_CMD_FLAG_FUA | P.NBD_CMD_FLAG_DF;
const FLAGS_ZERO = P.NBD_CMD_FLAG_FUA | P.NBD_CMD_FLAG_NO_HOLE | P.NBD_CMD_FLAG_FAST_ZERO;
const FLAGS_BLOCK_STATUS = P.NBD_CMD_FLAG_FUA | P.NBD_CMD_FLAG_REQ_ONE;

/** Flags a command may carry under the given transmission flags, or -1 for an unknown command. */
function allowedFlags(type: number, transmissionFlags: number): number {
  switch (type) {
    case P.NBD_CMD_READ:
      return (transmissionFlags & P.NBD_FLAG_SEND_DF) !== 0 ? FLAGS_READ : P.NBD_CMD_FLAG_FUA;
    case P.NBD_CMD_WRITE:
    case P.NBD_CMD_FLUSH:
    case P.NBD_CMD_TRIM:
    case P.NBD_CMD_CACHE:
      return P.NBD_CMD_FLAG_FUA;
    case P.NBD_CMD_WRITE_ZEROES:
      return (transmissionFlags & P.NBD_FLAG_SEND_FAST_ZERO) !== 0 ? FLAGS_ZERO : FLAGS_ZERO & ~P.NBD_CMD_FLAG_FAST_ZERO;
    case P.NBD_CMD_BLOCK_STATUS:
      return FLAGS_BLOCK_STATUS;
    default:
      return -1;
  }
}

function isWriteCommand(type: number): boolean {
  return type === P.NBD_CMD_WRITE || type === P.NBD_CMD_TRIM || type === P.NBD_CMD_WRITE_ZEROES;
}

/** Returns 0 when the request may be executed, else the errno to reply with. */
export function validateRequest(
  context: ValidationContext, type: number, flags: number, offsetBytes: number, lengthBytes: number,
): number {
  const allowed = allowedFlags(type, context.transmissionFlags);
  if (allowed < 0) return P.NBD_EINVAL;
  if ((flags & ~allowed) !== 0) return P.NBD_EINVAL;
  if (isWriteCommand(type) && (context.transmissionFlags & P.NBD_FLAG_READ_ONLY) !== 0) return P.NBD_EPERM;
  if (type === P.NBD_CMD_FLUSH) return offsetBytes === 0 && lengthBytes === 0 ? 0 : P.NBD_EINVAL;
  if (type === P.NBD_CMD_BLOCK_STATUS) {
    if (context.baseAllocationContextId < 0 || lengthBytes === 0) return P.NBD_EINVAL;
  }
  if ((type === P.NBD_CMD_READ || type === P.NBD_CMD_WRITE) && lengthBytes > NBD_PAYLOAD_BYTES_MAX) {
    return P.NBD_EINVAL;
  }
  // `offsetBytes > size - length` never overflows; Infinity (offset ≥ 2^53) fails it.
  if (lengthBytes > context.sizeBytes || offsetBytes > context.sizeBytes - lengthBytes) {
    return type === P.NBD_CMD_WRITE || type === P.NBD_CMD_WRITE_ZEROES ? P.NBD_ENOSPC : P.NBD_EINVAL;
  }
  return 0;
}
