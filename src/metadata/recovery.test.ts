// The recovery decision table, case by case: every combination of inputs gets
// exactly one decision, the one docs/DURABILITY.md's table gives, and
// 'check-data' is asked for only while the data checksum is unknown (so the
// caller's second call always decides).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decideRecovery, recordRank, RecoveryDecision, RecoveryInput, RecordState, DataCrcState } from './recovery.js';

const RECORDS: readonly RecordState[] = ['empty', 'corrupt', 'invalid', 'clean', 'dirty'];
const BOOLEANS = [false, true] as const;
const CRCS: readonly DataCrcState[] = ['unknown', 'match', 'mismatch'];
const DECISIONS: readonly RecoveryDecision[] = ['free', 'keep-clean', 'keep-dirty', 'check-data'];

/**
 * docs/DURABILITY.md, "Recovery decision table": rows are tried in order and
 * the first whose conditions hold decides ('-' = any value).
 */
const TABLE: ReadonlyArray<{ when: (input: RecoveryInput) => boolean; decision: RecoveryDecision; row: string }> = [
  { row: 'R1 empty / corrupt / invalid', when: (i) => i.record === 'empty' || i.record === 'corrupt' || i.record === 'invalid', decision: 'free' },
  { row: 'R2 dirty, superseded', when: (i) => i.record === 'dirty' && i.superseded, decision: 'free' },
  { row: 'R3 dirty, latest', when: (i) => i.record === 'dirty', decision: 'keep-dirty' },
  { row: 'R4 clean, superseded', when: (i) => i.record === 'clean' && i.superseded, decision: 'free' },
  { row: 'R5 clean, origin changed', when: (i) => i.record === 'clean' && i.originChanged, decision: 'free' },
  { row: 'R6 clean, clean shutdown', when: (i) => i.record === 'clean' && i.cleanShutdown, decision: 'keep-clean' },
  { row: 'R7 clean, crash, origin writes uncommitted', when: (i) => i.record === 'clean' && i.originWrites, decision: 'free' },
  { row: 'R8 clean, crash, crc unknown', when: (i) => i.record === 'clean' && i.dataCrc === 'unknown', decision: 'check-data' },
  { row: 'R9 clean, crash, crc match', when: (i) => i.record === 'clean' && i.dataCrc === 'match', decision: 'keep-clean' },
  { row: 'R10 clean, crash, crc mismatch', when: (i) => i.record === 'clean' && i.dataCrc === 'mismatch', decision: 'free' },
];

function* everyInput(): Generator<RecoveryInput> {
  for (const record of RECORDS) for (const superseded of BOOLEANS) for (const cleanShutdown of BOOLEANS)
    for (const originWrites of BOOLEANS) for (const originChanged of BOOLEANS) for (const dataCrc of CRCS) {
      yield { record, superseded, cleanShutdown, originWrites, originChanged, dataCrc };
    }
}

test('recovery: every one of the 240 input combinations gets exactly the table\'s decision', () => {
  let cases = 0;
  const used = new Set<string>();
  for (const input of everyInput()) {
    cases++;
    const matching = TABLE.find((row) => row.when(input));
    assert.ok(matching, `no table row for ${JSON.stringify(input)}`);
    used.add(matching.row);
    const decision = decideRecovery(input);
    assert.ok(DECISIONS.includes(decision), `unknown decision ${decision}`);
    assert.equal(decision, matching.decision, `${JSON.stringify(input)}: ${matching.row}`);
    // The function is pure: the same input always gives the same one decision.
    assert.equal(decideRecovery({ ...input }), decision);
  }
  assert.equal(cases, RECORDS.length * 2 * 2 * 2 * 2 * CRCS.length);
  assert.equal(used.size, TABLE.length, 'every row of the table is reachable');
});

test('recovery: check-data is asked for only while the checksum is unknown, and the second call decides', () => {
  for (const input of everyInput()) {
    const decision = decideRecovery(input);
    if (input.dataCrc !== 'unknown') assert.notEqual(decision, 'check-data', JSON.stringify(input));
    if (decision === 'check-data') {
      assert.equal(input.record, 'clean');
      assert.equal(decideRecovery({ ...input, dataCrc: 'match' }), 'keep-clean');
      assert.equal(decideRecovery({ ...input, dataCrc: 'mismatch' }), 'free');
    }
  }
});

test('recovery: a dirty record is never dropped unless a newer record of its block exists', () => {
  for (const input of everyInput()) {
    if (input.record !== 'dirty') continue;
    assert.equal(decideRecovery(input), input.superseded ? 'free' : 'keep-dirty', JSON.stringify(input));
  }
});

test('recovery: records rank by sequence, and a valid record beats an invalid one of the same commit', () => {
  assert.ok(recordRank(5, false) > recordRank(4, true));
  assert.ok(recordRank(5, true) > recordRank(5, false));
  assert.throws(() => recordRank(-1, true));
});
