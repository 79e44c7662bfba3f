import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FILE_WRITE_PIECE_BYTES } from '../constants.js';
import { splitIntoPieces, writePieceLength } from './write-pieces.js';

const P = FILE_WRITE_PIECE_BYTES;

test('a write piece ends at the next piece boundary or with the data', () => {
  assert.equal(writePieceLength(0, 4096), 4096);
  assert.equal(writePieceLength(0, 3 * P), P);
  assert.equal(writePieceLength(P - 4096, 3 * P), 4096);
  assert.equal(writePieceLength(5 * P + 100, P), P - 100);
});

test('buffers are split at piece boundaries, in order, with every byte once', () => {
  const buffers = [Buffer.alloc(P / 2, 1), Buffer.alloc(P + 512, 2), Buffer.alloc(4096, 3), Buffer.alloc(2 * P, 4)];
  const position = P - 8192;
  const pieces = splitIntoPieces(buffers, position);
  let at = position;
  for (const piece of pieces) {
    assert.equal(piece.position, at);
    const length = piece.buffers.reduce((sum, b) => sum + b.length, 0);
    assert.ok(length > 0);
    assert.equal(Math.floor(piece.position / P), Math.floor((piece.position + length - 1) / P), 'within one span');
    at += length;
  }
  assert.deepEqual(Buffer.concat(pieces.flatMap((piece) => piece.buffers)), Buffer.concat(buffers));
  assert.equal(pieces[0]!.buffers.length, 1, 'the first piece is the 8 KiB up to the boundary');
  assert.equal(pieces[0]!.buffers[0]!.length, 8192);
  assert.equal(splitIntoPieces([Buffer.alloc(4096)], 0)[0]!.buffers.length, 1);
  assert.deepEqual(splitIntoPieces([], 0), []);
});
