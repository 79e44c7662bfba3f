#!/usr/bin/env python3
# Coherence under concurrency: writers and readers on separate NBD connections
# (libnbd, one handle per thread) against one export.
#
#   coherence.py URI BLOCKS SECONDS SEED [--verify-only STATE.json] [--state STATE.json]
#
# Block b's content is (b, version) repeated; the origin starts as zeroes.
# Writer w owns blocks [w*B/W, (w+1)*B/W): it writes one or more whole blocks,
# sometimes zeroes or trims a block, one request at a time, and records each
# acknowledged version. A reader picks a random range, notes for each block the
# newest acknowledged version when its read starts (the floor), and checks what
# it gets: that block's own content at the floor version or a newer one (or the
# version in flight), never another block's data, never an older version. A
# flusher issues FLUSH on its own connection. At the end every block is read
# back and must be exactly its last acknowledged version; with --state the
# expected versions are saved, and --verify-only checks them after a restart.
import json
import random
import struct
import sys
import threading
import time

import nbd

BLOCK = 4096
WRITERS = 4
READERS = 4
ZERO = -1      # zeroed (write-zeroes): reads as zeroes
TRIMMED = -2   # trimmed: zeroes or any earlier version may be read


def content(block, version):
    return struct.pack('<II', block, version) * (BLOCK // 8)


def decode(data, block):
    """(version or ZERO) for a well-formed block, or a string describing what is wrong."""
    if data == bytes(BLOCK):
        return ZERO
    owner, version = struct.unpack_from('<II', data, 0)
    if data != content(owner, version):
        return 'garbage (not one whole block content)'
    if owner != block:
        return f'block {owner} data (version {version})'
    return version


class State:
    def __init__(self, blocks):
        self.lock = threading.Lock()
        self.history = [[ZERO] for _ in range(blocks)]   # acknowledged entries, oldest first (the origin starts as zeroes)
        self.inflight = [None] * blocks
        self.violations = []
        self.writes = 0
        self.reads = 0

    def accepts(self, block, floor, observed):
        with self.lock:
            entries = self.history[block][floor:]
            pending = self.inflight[block]
        candidates = list(entries) + ([pending] if pending is not None else [])
        if TRIMMED in candidates:
            return True  # trimmed contents are undefined until rewritten
        return observed in candidates


def connect(uri):
    h = nbd.NBD()
    h.connect_uri(uri)
    return h


def writer(uri, state, first, count, deadline, seed):
    rng = random.Random(seed)
    h = connect(uri)
    version = first * 1000 + 1
    while time.time() < deadline:
        block = first + rng.randrange(count)
        kind = rng.random()
        if kind < 0.05:
            entry, run = (ZERO if rng.random() < 0.5 else TRIMMED), 1
        else:
            entry, run = version, min(1 + rng.randrange(4), first + count - block)
            version += 1
        with state.lock:
            for b in range(block, block + run):
                state.inflight[b] = entry
        if entry == ZERO:
            h.zero(BLOCK, block * BLOCK)
        elif entry == TRIMMED:
            h.trim(BLOCK, block * BLOCK)
        else:
            h.pwrite(b''.join(content(b, entry) for b in range(block, block + run)), block * BLOCK,
                     nbd.CMD_FLAG_FUA if rng.random() < 0.05 else 0)
        with state.lock:
            for b in range(block, block + run):
                state.history[b].append(entry)
                state.inflight[b] = None
            state.writes += 1
    h.shutdown()


def reader(uri, state, blocks, deadline, seed):
    rng = random.Random(seed)
    h = connect(uri)
    while time.time() < deadline and len(state.violations) < 10:
        block = rng.randrange(blocks)
        # A quarter of the reads are over 64 KiB: a RAM tier sends those as lent pages (zero-copy).
        run = min(1 + rng.randrange(8) if rng.random() < 0.75 else 17 + rng.randrange(48), blocks - block)
        with state.lock:
            floors = [len(state.history[b]) - 1 for b in range(block, block + run)]
        data = h.pread(run * BLOCK, block * BLOCK)
        for i in range(run):
            b = block + i
            observed = decode(data[i * BLOCK:(i + 1) * BLOCK], b)
            if isinstance(observed, str) or not state.accepts(b, floors[i], observed):
                with state.lock:
                    state.violations.append(f'block {b}: read {observed}, allowed {state.history[b][floors[i]:]} '
                                            f'or in flight {state.inflight[b]}')
        with state.lock:
            state.reads += 1
    h.shutdown()


def flusher(uri, deadline):
    h = connect(uri)
    while time.time() < deadline:
        time.sleep(0.05)
        h.flush()
    h.shutdown()


def final(state):
    """The newest acknowledged entry per block; TRIMMED blocks are rewritten first by the caller."""
    return [history[-1] for history in state.history]


def verify(uri, expected):
    h = connect(uri)
    bad = []
    for block, entry in enumerate(expected):
        observed = decode(h.pread(BLOCK, block * BLOCK), block)
        if observed != entry:
            bad.append(f'block {block}: {observed}, expected {entry}')
    h.shutdown()
    return bad


def main():
    uri, blocks, seconds, seed = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
    rest = sys.argv[5:]
    if rest[:1] == ['--verify-only']:
        expected = json.load(open(rest[1]))
        bad = verify(uri, expected)
        print(json.dumps({'bad': bad[:10], 'badCount': len(bad)}))
        return 1 if bad else 0
    state = State(blocks)
    deadline = time.time() + seconds
    per = blocks // WRITERS
    threads = [threading.Thread(target=writer, args=(uri, state, w * per, per, deadline, seed * 100 + w)) for w in range(WRITERS)]
    threads += [threading.Thread(target=reader, args=(uri, state, blocks, deadline, seed * 100 + 50 + r)) for r in range(READERS)]
    threads.append(threading.Thread(target=flusher, args=(uri, deadline)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Trimmed blocks are undefined: give them a known content before the final check.
    h = connect(uri)
    for block, history in enumerate(state.history):
        if history[-1] == TRIMMED:
            h.pwrite(content(block, 999_999), block * BLOCK)
            history.append(999_999)
    h.flush()
    h.shutdown()
    expected = final(state)
    bad = verify(uri, expected)
    if rest[:1] == ['--state']:
        json.dump(expected, open(rest[1], 'w'))
    print(json.dumps({'writes': state.writes, 'reads': state.reads, 'violations': state.violations[:10],
                      'violationCount': len(state.violations), 'bad': bad[:10], 'badCount': len(bad)}))
    return 1 if state.violations or bad else 0


if __name__ == '__main__':
    sys.exit(main())
