// How a file write is cut into system calls: none crosses a multiple of
// FILE_WRITE_PIECE_BYTES, so the page cache never builds a folio larger than
// that from our writes (why: the constant's comment). Pure; no I/O.
import { FILE_WRITE_PIECE_BYTES } from '../constants.js';
import { assert } from '../stdx/assert.js';

/** Bytes the write system call at `position` may cover, of `remaining`: up to the next piece boundary. */
export function writePieceLength(position: number, remaining: number): number {
  assert(remaining > 0 && position >= 0, 'an empty write piece');
  return Math.min(remaining, FILE_WRITE_PIECE_BYTES - (position % FILE_WRITE_PIECE_BYTES));
}

export interface WritePiece {
  readonly position: number;
  readonly buffers: Buffer[];
}

/** `buffers` written from `position`, as pieces that each stay within one FILE_WRITE_PIECE_BYTES span. */
export function splitIntoPieces(buffers: readonly Buffer[], position: number): WritePiece[] {
  const pieces: WritePiece[] = [];
  let current: WritePiece | undefined;
  let room = 0;
  let at = position;
  for (const buffer of buffers) {
    let used = 0;
    while (used < buffer.length) {
      if (room === 0) {
        current = { position: at, buffers: [] };
        pieces.push(current);
        room = writePieceLength(at, Number.MAX_SAFE_INTEGER - at);
      }
      const take = Math.min(room, buffer.length - used);
      current!.buffers.push(used === 0 && take === buffer.length ? buffer : buffer.subarray(used, used + take));
      used += take;
      room -= take;
      at += take;
    }
  }
  return pieces;
}
