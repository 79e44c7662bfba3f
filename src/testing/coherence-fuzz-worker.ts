// The coherence fuzzer's worker thread (timed-seed-runner.ts): runs each seed
// its parent sends, so the parent can stop a seed that hangs. Testing only.
import { describeCoherenceFuzz, runCoherenceFuzz } from './coherence-fuzz.js';
import { serveSeeds } from './timed-seed-runner.js';

serveSeeds(runCoherenceFuzz, describeCoherenceFuzz);
