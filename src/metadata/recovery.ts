// The recovery decision table: what happens to each metadata record when a
// cache is opened. Pure; the metadata store gathers the inputs (including the
// data checksum, read only when the table asks for it) and applies the result.
//
// Inputs
//   record       empty | corrupt | invalid | clean | dirty   (decoded record)
//   superseded   a record of the same origin block with a higher (sequence, valid) exists
//   shutdown     clean | crash                               (superblock flag)
//   originWrites the superblock says origin writes may have happened since the last
//                commit (so a clean copy may differ from the origin)
//   originChanged the origin's identity changed while the cache was offline
//   dataCrc      match | mismatch | unknown                  (clean records only)
//
// Why: dirty records are the only copy of acknowledged data, so they are kept
// whatever their data checksum says (a torn write leaves sectors of old and new,
// both written by the client). Clean records are only a performance asset: keep
// one only when its data provably equals the origin's.
import { assert } from '../stdx/assert.js';

export type RecordState = 'empty' | 'corrupt' | 'invalid' | 'clean' | 'dirty';
export type DataCrcState = 'match' | 'mismatch' | 'unknown';
export type RecoveryDecision = 'free' | 'keep-clean' | 'keep-dirty' | 'check-data';

export interface RecoveryInput {
  readonly record: RecordState;
  readonly superseded: boolean;
  readonly cleanShutdown: boolean;
  readonly originWrites: boolean;
  readonly originChanged: boolean;
  readonly dataCrc: DataCrcState;
}

/**
 * Exactly one decision per input. 'check-data' asks the caller to read the
 * block, compute its checksum and call again with dataCrc = match | mismatch.
 */
export function decideRecovery(input: RecoveryInput): RecoveryDecision {
  switch (input.record) {
    case 'empty':
    case 'corrupt':
    case 'invalid':
      return 'free';
    case 'dirty':
      return input.superseded ? 'free' : 'keep-dirty';
    case 'clean':
      if (input.superseded || input.originChanged) return 'free';
      if (input.cleanShutdown) return 'keep-clean';
      if (input.originWrites) return 'free';
      if (input.dataCrc === 'unknown') return 'check-data';
      return input.dataCrc === 'match' ? 'keep-clean' : 'free';
  }
}

/** The order in which two records of one origin block are ranked (higher wins). */
export function recordRank(sequence: number, valid: boolean): number {
  assert(Number.isSafeInteger(sequence) && sequence >= 0 && sequence < 2 ** 52);
  return sequence * 2 + (valid ? 1 : 0);
}
