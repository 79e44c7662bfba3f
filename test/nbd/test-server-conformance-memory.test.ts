// The full conformance suite (nbd-conformance.md A–G) against our server over a
// 256 MiB MemoryDevice, served in-process on a Unix socket in a temp dir.
import { MiB } from '../../src/constants.js';
import { defineConformanceSuite } from '../support/conformance.js';
import { startMemoryServer } from '../support/nbd-servers.js';

defineConformanceSuite('NbdServer over MemoryDevice (256 MiB)', () => startMemoryServer(256 * MiB));
