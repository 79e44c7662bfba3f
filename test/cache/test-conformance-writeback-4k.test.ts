// The NBD conformance suite against the real `blockcache serve` in writeback mode with 4K cache blocks.
import { defineBlockcacheConformance } from '../support/blockcache.js';

await defineBlockcacheConformance('writeback', '4K');
