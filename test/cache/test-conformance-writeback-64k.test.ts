// The NBD conformance suite against the real `blockcache serve` in writeback mode with 64K cache blocks.
import { defineBlockcacheConformance } from '../support/blockcache.js';

await defineBlockcacheConformance('writeback', '64K', { skipFuse: true });
