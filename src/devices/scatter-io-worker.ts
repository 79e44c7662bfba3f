// Worker side of ScatterIo (src/devices/scatter-io.ts): runs one job at a time,
// a list of (position, length) pieces read into or written from one memory
// block, packed in order, with synchronous positional system calls. Pieces
// that continue each other on the file become one system call (writes: one per
// FILE_WRITE_PIECE_BYTES span, src/devices/write-pieces.ts).
//
// The job's memory is a SharedArrayBuffer: the worker reads into (or writes
// from) the caller's memory directly, no copy and no transfer.
// With `checksums`, a read job also returns each piece's CRC-32C (the cleaner
// records one per block: computing them here keeps them off the event loop).
// An error stops the job: the reply carries the errno code, the message and the
// failing position; pieces before it may have been done (like any failed write).
import * as fs from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { crc32c } from '../stdx/checksum.js';
import { writePieceLength } from './write-pieces.js';

export interface ScatterJob {
  readonly id: number;
  readonly write: boolean;
  readonly fd: number;
  readonly positions: Float64Array;
  readonly lengths: Uint32Array;
  readonly memory: SharedArrayBuffer;
  readonly checksums: boolean;
}

export interface ScatterReply {
  readonly id: number;
  readonly checksums?: Uint32Array;
  readonly error?: { readonly code: string | undefined; readonly message: string; readonly position: number };
}

/** Position of the system call in progress (reported when it fails). */
let current = -1;

function run(job: ScatterJob): void {
  const bytes = new Uint8Array(job.memory);
  const { positions, lengths, fd } = job;
  let at = 0;
  for (let i = 0; i < positions.length;) {
    const position = positions[i]!;
    let length = lengths[i]!;
    i++;
    while (i < positions.length && positions[i] === position + length) length += lengths[i++]!;
    let done = 0;
    while (done < length) {
      current = position + done;
      if (job.write) {
        done += fs.writeSync(fd, bytes, at + done, writePieceLength(position + done, length - done), position + done);
      } else {
        const read = fs.readSync(fd, bytes, at + done, length - done, position + done);
        if (read === 0) { bytes.fill(0, at + done, at + length); break; } // past the end reads as zeroes
        done += read;
      }
    }
    at += length;
  }
}

function checksums(job: ScatterJob): Uint32Array {
  const result = new Uint32Array(job.lengths.length);
  const bytes = Buffer.from(job.memory);
  let at = 0;
  for (let i = 0; i < result.length; i++) {
    result[i] = crc32c(bytes.subarray(at, at + job.lengths[i]!));
    at += job.lengths[i]!;
  }
  return result;
}

parentPort!.on('message', (job: ScatterJob) => {
  let reply: ScatterReply;
  try {
    run(job);
    reply = { id: job.id, checksums: job.checksums && !job.write ? checksums(job) : undefined };
  } catch (error) {
    const failure = error as NodeJS.ErrnoException;
    reply = { id: job.id, error: { code: failure.code, message: failure.message, position: current } };
  }
  parentPort!.postMessage(reply);
});
