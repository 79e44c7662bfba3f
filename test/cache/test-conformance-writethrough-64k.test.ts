// The NBD conformance suite against the real `blockcache serve` in writethrough mode with 64K cache blocks.
import { defineBlockcacheConformance } from '../support/blockcache.js';

await defineBlockcacheConformance('writethrough', '64K', { skipFuse: true });
