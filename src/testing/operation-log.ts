// The last operations a seeded run began, and whether each has ended, kept in
// shared memory (testing only). A seed runs in a worker thread and writes here;
// when the seed hangs, its parent stops the worker and reads the log, since a
// stuck thread (a promise that never settles, a loop of microtasks or of
// event-loop turns) can send nothing itself.
//
// Layout: a header of one int32 (the next sequence number, from 1), then
// ENTRIES entries of [sequence, ended, textBytes] as int32s, then ENTRIES text
// slots of TEXT_BYTES_MAX bytes each. Entry i holds sequence numbers congruent
// to i modulo ENTRIES; an entry whose sequence is 0 was never written.
import { assert } from '../stdx/assert.js';

/** Operations kept: more than the actors a run has, so every pending one shows next to the last few that ended. */
const ENTRIES = 32;
/** Bytes of an operation's description; longer descriptions are cut. */
const TEXT_BYTES_MAX = 120;
const HEADER_INTS = 1;
const ENTRY_INTS = 3;
const INTS = HEADER_INTS + ENTRIES * ENTRY_INTS;
const TEXT_OFFSET_BYTES = INTS * Int32Array.BYTES_PER_ELEMENT;
const MEMORY_BYTES = TEXT_OFFSET_BYTES + ENTRIES * TEXT_BYTES_MAX;
const NO_SEQUENCE = 0;

export class OperationLog {
  private readonly ints: Int32Array;
  private readonly text: Uint8Array;
  private readonly encoder = new TextEncoder();
  private readonly decoder = new TextDecoder();

  /** Memory for a log, to share with a worker thread. */
  static memory(): SharedArrayBuffer {
    return new SharedArrayBuffer(MEMORY_BYTES);
  }

  constructor(memory: SharedArrayBuffer | ArrayBuffer = OperationLog.memory()) {
    assert(memory.byteLength === MEMORY_BYTES, 'not an operation log\'s memory');
    this.ints = new Int32Array(memory, 0, INTS);
    this.text = new Uint8Array(memory, TEXT_OFFSET_BYTES, ENTRIES * TEXT_BYTES_MAX);
  }

  /** Empties the log (before a seed starts). */
  reset(): void {
    this.ints.fill(0);
    Atomics.store(this.ints, 0, 1);
  }

  /** Records an operation that begins now; returns its sequence number for `end`. */
  begin(description: string): number {
    let sequence = Atomics.load(this.ints, 0);
    if (sequence === NO_SEQUENCE) sequence = 1; // never reset: start anyway
    Atomics.store(this.ints, 0, sequence + 1);
    const entry = sequence % ENTRIES;
    const slot = this.text.subarray(entry * TEXT_BYTES_MAX, (entry + 1) * TEXT_BYTES_MAX);
    const { written } = this.encoder.encodeInto(description, slot);
    const at = HEADER_INTS + entry * ENTRY_INTS;
    Atomics.store(this.ints, at + 1, 0);
    Atomics.store(this.ints, at + 2, written);
    Atomics.store(this.ints, at, sequence);
    return sequence;
  }

  /** Marks an operation ended (unless the log has wrapped past it). */
  end(sequence: number): void {
    const at = HEADER_INTS + (sequence % ENTRIES) * ENTRY_INTS;
    if (Atomics.load(this.ints, at) === sequence) Atomics.store(this.ints, at + 1, 1);
  }

  /**
   * The last `count` operations begun, and any older one still kept that has not ended,
   * oldest first: "#17 writer 2: write 130+3 (pending)".
   */
  recent(count: number): string[] {
    assert(count > 0 && count <= ENTRIES, `at most ${ENTRIES} operations are kept`);
    const next = Atomics.load(this.ints, 0);
    const lines: string[] = [];
    for (let sequence = Math.max(1, next - ENTRIES); sequence < next; sequence++) {
      const entry = sequence % ENTRIES;
      const at = HEADER_INTS + entry * ENTRY_INTS;
      if (Atomics.load(this.ints, at) !== sequence) continue;
      if (sequence < next - count && Atomics.load(this.ints, at + 1) !== 0) continue;
      const bytes = Math.min(Atomics.load(this.ints, at + 2), TEXT_BYTES_MAX);
      const description = this.decoder.decode(this.text.slice(entry * TEXT_BYTES_MAX, entry * TEXT_BYTES_MAX + bytes));
      lines.push(`#${sequence} ${description}${Atomics.load(this.ints, at + 1) === 0 ? ' (pending)' : ''}`);
    }
    return lines;
  }
}
