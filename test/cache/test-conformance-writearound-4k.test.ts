// The NBD conformance suite against the real `blockcache serve` in writearound mode with 4K cache blocks.
import { defineBlockcacheConformance } from '../support/blockcache.js';

await defineBlockcacheConformance('writearound', '4K', { skipFuse: true });
