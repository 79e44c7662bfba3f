// Every limit of blockcache, each with its reason. Relations between limits are
// asserted at load time at the bottom of this file.
//
// Editing rule for parallel work: each section belongs to one layer; add new
// limits only inside your layer's section.
import { assert, isPowerOfTwo } from './stdx/assert.js';

// ---- units --------------------------------------------------------------------
export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;
/** The atomic unit of every device we support: a 512-byte sector survives a crash whole or not at all. */
export const SECTOR_BYTES = 512;

// ---- devices ------------------------------------------------------------------
/** Memory devices allocate in chunks this size: small enough for sparse tests, large enough to be cheap. */
export const MEMORY_DEVICE_CHUNK_BYTES = 64 * KiB;
/**
 * File writes are issued as system calls that never cross a multiple of this size
 * (src/devices/write-pieces.ts). The page cache sizes a new folio by the write that
 * creates it, and ext4 (large folios, Linux 6.16 on) walks every 4 KiB buffer of a
 * folio on each write into it: after 1 MiB writes, a 4 KiB write into the same range
 * took 29.6 µs, after 64 KiB writes 6.1 µs, after 4 KiB writes 3.9 µs (this VM,
 * ext4, Linux 6.18). Writing 1 MiB in 64 KiB calls costs 6.4 GB/s against 9.6 GB/s.
 */
export const FILE_WRITE_PIECE_BYTES = 64 * KiB;
/**
 * Worker threads for batched scattered file I/O (src/devices/scatter-io.ts): as
 * many as libuv's default thread pool, so a batched read of a cold SSD keeps the
 * queue depth that per-block reads had (each worker issues its pieces one by one).
 */
export const SCATTER_IO_WORKERS = 4;
/** Largest batched I/O job: bounds the memory one job holds (one cleaner chunk). */
export const SCATTER_IO_JOB_BYTES_MAX = 4 * MiB;
/** Job memory blocks kept for reuse between jobs (as many as a flush keeps chunks in flight; 16 MiB). */
export const SCATTER_IO_MEMORY_KEEP = 4;
/**
 * Jobs up to this size (a turn's cache hits: tens of blocks) take memory of this
 * size, so many of them can be in flight without allocating (and the kernel
 * zeroing) a 4 MiB block each.
 */
export const SCATTER_IO_SMALL_JOB_BYTES = 256 * KiB;
/** Small job memory blocks kept for reuse (4 MiB in all). */
export const SCATTER_IO_SMALL_MEMORY_KEEP = 16;
/**
 * The coalescing layer batches writes only when one event-loop turn brings at
 * least this many scattered small pieces: below it, a worker round trip costs
 * more than the thread-pool round trips it saves.
 */
export const SCATTER_IO_PIECES_MIN = 16;
/**
 * On the cache device, the coalescing layer batches reads when one turn brings
 * at least this many scattered small reads (cache hits at queue depth): handing
 * each read to libuv's thread pool cost the event loop more than one worker
 * message for them all (4 KiB hits at depth 32: +30% IOPS; 2 and 4 measured alike).
 */
export const SCATTER_READ_PIECES_MIN = 4;
/**
 * Most reads in one batched job: a worker reads its pieces one by one, so a
 * turn with more reads is split over several workers (bounds a job's latency on
 * a device that is not in the page cache).
 */
export const SCATTER_READ_JOB_PIECES_MAX = 16;
/** Most buffers in one vectored read or write (Linux's IOV_MAX: a preadv/pwritev takes no more). */
export const VECTORED_BUFFERS_MAX = 1024;
/** Pieces larger than this are written through the thread pool (one system call each already; no copy). */
export const SCATTER_IO_PIECE_BYTES_MAX = 64 * KiB;

// ---- cache geometry -------------------------------------------------------------
/** Smallest cache block: a page; smaller blocks make metadata larger than the data it saves. */
export const BLOCK_BYTES_MIN = 4 * KiB;
/** Largest cache block: beyond 1 MiB, a partial write miss pads too much from the origin. */
export const BLOCK_BYTES_MAX = 1 * MiB;
export const BLOCK_BYTES_DEFAULT = 4 * KiB;
/** Default associativity (dm-cache's default is 1024, flashcache's 512). */
export const ASSOC_DEFAULT = 512;
/** Runs of this many consecutive origin blocks map to one set (dm-cache's CONSECUTIVE_BLOCKS). */
export const CONSECUTIVE_BLOCKS_MAX = 512;
/** Cache blocks are indexed by uint32 typed arrays; one value is reserved as "none". */
export const CACHE_BLOCKS_MAX = 2 ** 32 - 2;
/**
 * The SSD tier's block index has one open-addressing table per set, sized so a
 * full set fills it to this load: 80% keeps probe sequences short (about 3 on a
 * hit, 13 on a miss, within one set's 1.25 KiB table at assoc 512) at 2.5 bytes
 * per cache block (src/cache/block-index.ts).
 */
export const SET_INDEX_LOAD_PERCENT = 80;
/** Origin block numbers are stored as doubles in memory and u64 on disk; keep them exact. */
export const ORIGIN_BYTES_MAX = Number.MAX_SAFE_INTEGER;

// ---- metadata -------------------------------------------------------------------------
/**
 * The metadata region is read at open (and by `check`) in chunks of this size, the
 * next read while one is decoded (a million-block region, 32 MiB, takes 128 reads).
 */
export const METADATA_SCAN_CHUNK_BYTES = 256 * KiB;
/** A commit reads, patches and writes staged pages as runs of at most this many contiguous pages (1 MiB). */
export const METADATA_WRITE_RUN_PAGES_MAX = 256;

// ---- engine -------------------------------------------------------------------------
/** Percent of the cache that may be dirty before background cleaning starts (flashcache dirty_thresh_pct). */
export const DIRTY_THRESHOLD_PERCENT_DEFAULT = 20;
/**
 * While clients are busy, threshold cleaning writes back the excess over its target at
 * excess / this per second (src/cache/writeback-pace.ts; bcache's writeback_rate_p_term_inverse
 * is 40 s); 0 = full speed. Measured with 4 KiB random writes at depth 32 over twice the
 * threshold: 0.32 of nbdkit at full speed, 0.66 at 5 MiB/s (bench/RESULTS.md).
 */
export const DIRTY_PACE_MS_DEFAULT = 30_000;
/** Paced cleaning never writes back slower than this, so the threshold is reached in bounded time. */
export const DIRTY_PACE_BYTES_PER_SECOND_MIN = 1 * MiB;
/** Clients count as idle (cleaning unpaced) once no request has arrived for this long. */
export const CLIENTS_IDLE_AFTER_MS = 250;
/** A paced cleaner re-checks at least this often whether it may speed up (clients idle, ceiling). */
export const PACE_RECHECK_MS = 100;
/** Blocks written back to the origin at once by the cleaner. */
export const WRITEBACK_INFLIGHT_MAX = 64;
/**
 * The cleaner reads a round's dirty blocks in chunks of at most this much (one
 * batched cache read: src/devices/scatter-io.ts) and writes each chunk's runs.
 */
export const WRITEBACK_CHUNK_BYTES_MAX = 4 * MiB;
/** Chunks a round keeps in flight: the next chunks are read while earlier ones are written (bounds memory to 4 x 4 MiB). */
export const WRITEBACK_CHUNKS_INFLIGHT = 4;
/** Coalesced origin writes the cleaner keeps in flight (a disk queue wants a few; more only adds latency for clients). */
export const WRITEBACK_CONCURRENCY_DEFAULT = 8;
/** Largest writeback concurrency a user may set (each in-flight run holds up to 4 MiB of buffer). */
export const WRITEBACK_CONCURRENCY_MAX = 256;
/** Dirty blocks older than this are cleaned when clients are idle (flashcache's fallow_delay default, 15 min). */
export const DIRTY_MAX_AGE_MS_DEFAULT = 15 * 60 * 1000;
/** Streams at least this long bypass the cache; 0 = off (flashcache's default; bcache uses 4 MiB). */
export const SEQUENTIAL_CUTOFF_BYTES_DEFAULT = 0;
/**
 * A read miss fetches the cold blocks around it, up to this aligned window, in the same origin
 * read, into free cache slots only (bcache's readahead, kept to a cache with room): one slow
 * origin request fills several blocks. 0 = off. Largest: READAHEAD_BYTES_MAX.
 */
export const READAHEAD_BYTES_DEFAULT = 128 * KiB;
export const READAHEAD_BYTES_MAX = 4 * MiB;
/** Metadata records changed since the last commit before a commit is forced (bounds commit size). */
export const PENDING_RECORDS_MAX = 64 * 1024;
/** Cache-block I/O a single client request may have in flight at once. */
export const REQUEST_BLOCKS_INFLIGHT_MAX = 256;
/** Waiters queued on one busy block before callers are told to back off (never hit by NBD: bounded by in-flight limits). */
export const BLOCK_WAITERS_MAX = 4096;

// ---- RAM tier ---------------------------------------------------------------------------
/** Default RAM tier size (`--ram-cache`): hot blocks answered without a system call. */
export const RAM_CACHE_BYTES_DEFAULT = 64 * MiB;
/** Largest RAM tier a user may ask for (one arena, allocated at once). */
export const RAM_CACHE_BYTES_MAX = 64 * GiB;
/**
 * Writes longer than this are not completed in RAM at once (writeNow declines them) unless
 * every block they touch already has a RAM page: write()
 * takes them, which writes a run of cold blocks, or of SSD-tier hits not all in RAM, to the SSD
 * tier in one piece; otherwise they go the per-block way, completing in RAM only where a block
 * already has a page (never taking new ones). Absorbing a 1 MiB
 * write copies it into 256 pages and later pushes them down, a second copy and a write per
 * run: a cold pass of 1 MiB writes ran at 255-276 MiB/s absorbed and 328-343 MiB/s not
 * (bench/RESULTS.md, "Before/after: large cold writes skip the RAM tier").
 */
export const RAM_WRITE_BYTES_MAX = 128 * KiB;
/**
 * Without a RAM tier, a writeback write of at most this many bytes over cached blocks in
 * consecutive slots is written at once, inline (CacheEngine.writeSsdHitNow); the cache
 * device's inline gate takes no more (INLINE_IO_BYTES_MAX). Larger ones take the run of hits.
 */
export const SSD_WRITE_NOW_BYTES_MAX = 64 * KiB;
/** Share of RAM pages that may be dirty at once; writes beyond it go straight to the SSD tier. */
export const RAM_DIRTY_PERCENT = 50;
/**
 * Pages lent to in-flight replies (zero-copy reads) at most, in percent of the
 * tier. With RAM_DIRTY_PERCENT it leaves a page that is free or clean and not
 * lent, so a write to a lent page can always move its block to another page.
 */
export const RAM_PINNED_PERCENT = 25;
/** Dirty share above which the RAM writer pushes pages down at once (the kernel's dirty_background_ratio). */
export const RAM_BACKGROUND_PERCENT = 25;
/** A dirty RAM page older than this is pushed down even below the background mark (the kernel's dirty_expire is 30 s, ext4 commits every 5 s). */
export const RAM_DIRTY_EXPIRE_MS = 5000;
/** Pages the RAM writer pushes down at once. */
export const RAM_PUSH_INFLIGHT_MAX = 32;
/**
 * Clients count as active if they made a request within this long: the RAM writer then leaves
 * pages over the background mark in RAM (writes keep completing there, up to RAM_DIRTY_PERCENT)
 * and pushes only expired pages, RAM_PUSH_BUSY_INFLIGHT at a time. Pushes run on the event loop
 * that serves clients; the kernel's flusher threads have their own CPUs.
 */
export const RAM_CLIENTS_IDLE_MS = 20;
/** Expired pages pushed down at once while clients are active. */
export const RAM_PUSH_BUSY_INFLIGHT = 4;
/** After a failed push, background pushing pauses this long (flushes still push and report the error). */
export const RAM_PUSH_RETRY_MS = 1000;

// ---- NBD --------------------------------------------------------------------------
/** Largest READ/WRITE payload we accept: the spec's "SHOULD accept" size; qemu splits at 32 MiB. */
export const NBD_PAYLOAD_BYTES_MAX = 32 * MiB;
/** Preferred request size advertised in INFO_BLOCK_SIZE. */
export const NBD_PREFERRED_BLOCK_BYTES = 4 * KiB;
/** Longest string (export name, message) the protocol allows. */
export const NBD_STRING_BYTES_MAX = 4096;
/** Largest option payload we read in the handshake; longer options are refused without reading them. */
export const NBD_OPTION_BYTES_MAX = 64 * KiB;
/** Requests one connection may have in flight before we stop reading its socket (nbdcopy uses 64). */
export const NBD_INFLIGHT_REQUESTS_MAX = 128;
/** Payload bytes one connection may have in flight before we stop reading its socket. */
export const NBD_INFLIGHT_BYTES_MAX = 96 * MiB;
/** Concurrent connections per server; more are refused at accept. */
export const NBD_CONNECTIONS_MAX = 256;
/** BLOCK_STATUS extents per reply chunk (the spec says at most 2^20). */
export const NBD_EXTENTS_MAX = 1024 * 1024;
/** A client must finish the handshake within this time (options are tiny; clients answer at once). */
export const NBD_HANDSHAKE_TIMEOUT_MS = 30_000;
/** Client side: requests in flight per NbdDevice before callers queue. */
export const NBD_CLIENT_INFLIGHT_MAX = 64;
/**
 * An NBD connection's receive buffer, reused for every socket read (server and client): one
 * read takes up to this much (32 pipelined 4 KiB WRITEs are 132 KiB; Node's own reads take
 * 64 KiB, each into a fresh Buffer).
 */
export const NBD_RECEIVE_BUFFER_BYTES = 256 * KiB;
/** A WRITE payload (server) or READ reply data (client) with at least this much still to come is read straight into its buffer. */
export const NBD_DIRECT_READ_BYTES_MIN = 32 * KiB;
/** Client side: handshake or connect that takes longer than this fails. */
export const NBD_CLIENT_CONNECT_TIMEOUT_MS = 10_000;

// ---- relations ------------------------------------------------------------------------
assert(isPowerOfTwo(BLOCK_BYTES_MIN) && isPowerOfTwo(BLOCK_BYTES_MAX) && BLOCK_BYTES_MIN <= BLOCK_BYTES_MAX);
assert(BLOCK_BYTES_MIN % SECTOR_BYTES === 0);
assert(isPowerOfTwo(ASSOC_DEFAULT) && isPowerOfTwo(CONSECUTIVE_BLOCKS_MAX));
assert(SET_INDEX_LOAD_PERCENT > 0 && SET_INDEX_LOAD_PERCENT < 100, 'a full set leaves empty positions in its index table');
assert(NBD_INFLIGHT_BYTES_MAX >= 2 * NBD_PAYLOAD_BYTES_MAX, 'a connection must fit two maximal writes');
assert(NBD_PAYLOAD_BYTES_MAX >= BLOCK_BYTES_MAX);
assert(MEMORY_DEVICE_CHUNK_BYTES % SECTOR_BYTES === 0);
assert(WRITEBACK_CHUNK_BYTES_MAX <= SCATTER_IO_JOB_BYTES_MAX, 'a cleaner chunk is read in one batched job');
assert(SCATTER_IO_PIECE_BYTES_MAX * SCATTER_IO_PIECES_MIN <= SCATTER_IO_JOB_BYTES_MAX);
assert(METADATA_SCAN_CHUNK_BYTES % (4 * KiB) === 0, 'scan chunks hold whole metadata pages');
assert(METADATA_WRITE_RUN_PAGES_MAX >= 1);
