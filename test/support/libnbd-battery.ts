// The libnbd battery of nbd-conformance.md §E2/§E3 as one python3-libnbd script.
// It prints one JSON line per check: {"check": name, "ok": bool, "detail": str}.
// Run with Debian's python3 (`/usr/bin/python3 -c SCRIPT URI`).

export const LIBNBD_BATTERY_PY = String.raw`
import json, os, sys, nbd
URI = sys.argv[1]
MiB = 1024 * 1024

def report(name, ok, detail=""):
    print(json.dumps({"check": name, "ok": bool(ok), "detail": str(detail)}), flush=True)

def handle(meta=False, sr=True, block_size=True, flags=None, opt=False):
    h = nbd.NBD()
    if not sr: h.set_request_structured_replies(False)
    if not block_size: h.set_request_block_size(False)
    if meta: h.add_meta_context(nbd.CONTEXT_BASE_ALLOCATION)
    if flags is not None: h.set_handshake_flags(flags)
    if opt: h.set_opt_mode(True)
    h.connect_uri(URI)
    return h

def errno_of(f):
    try:
        f(); return "OK"
    except nbd.Error as e:
        return e.errno

def check(name):
    def wrap(f):
        try:
            r = f()
            if r is None: r = (True, "")
            report(name, r[0], r[1])
        except Exception as e:
            report(name, False, "%s: %s" % (type(e).__name__, e))
        return f
    return wrap

@check("E3.1 capabilities")
def _():
    h = handle(meta=True)
    d = (h.get_protocol(), h.get_structured_replies_negotiated(), h.can_meta_context(nbd.CONTEXT_BASE_ALLOCATION), h.is_read_only(), h.get_size())
    return (d[0] == "newstyle-fixed" and d[1] and d[2] and not d[3] and d[4] >= 64 * MiB, d)

@check("E2/E3.2 error matrix")
def _():
    h = handle()
    h.set_strict_mode(0)
    sz = h.get_size()
    got = {
        "read past end": errno_of(lambda: h.pread(512, sz)),
        "read straddling end": errno_of(lambda: h.pread(1024, sz - 512)),
        "write past end": errno_of(lambda: h.pwrite(b"x" * 512, sz)),
        "zero past end": errno_of(lambda: h.zero(512, sz)),
        "trim past end": errno_of(lambda: h.trim(512, sz)),
        "cache past end": errno_of(lambda: h.cache(512, sz)),
        "read offset 2^64-512": errno_of(lambda: h.pread(1024, 2**64 - 512)),
        "read offset 2^63": errno_of(lambda: h.pread(512, 2**63)),
        "read unknown flag 0x40": errno_of(lambda: h.pread(512, 0, 0x40)),
        "read with FUA": errno_of(lambda: h.pread(512, 0, nbd.CMD_FLAG_FUA)),
        "write NO_HOLE": errno_of(lambda: h.pwrite(b"x" * 512, 0, nbd.CMD_FLAG_NO_HOLE)),
        "write DF": errno_of(lambda: h.pwrite(b"x" * 512, 0, nbd.CMD_FLAG_DF)),
        "read REQ_ONE": errno_of(lambda: h.pread(512, 0, nbd.CMD_FLAG_REQ_ONE)),
        "trim FAST_ZERO": errno_of(lambda: h.trim(512, 0, nbd.CMD_FLAG_FAST_ZERO)),
        "zero FAST_ZERO": errno_of(lambda: h.zero(512, 0, nbd.CMD_FLAG_FAST_ZERO)),
        "block_status, no ctx": errno_of(lambda: h.block_status(512, 0, lambda *a: 0)),
    }
    zero_len = errno_of(lambda: h.pread(0, 0))
    alive = h.aio_is_ready() and h.pread(512, 0) is not None
    expected = {
        "read past end": "EINVAL", "read straddling end": "EINVAL", "write past end": "ENOSPC", "zero past end": "ENOSPC",
        "trim past end": "EINVAL", "cache past end": "EINVAL", "read offset 2^64-512": "EINVAL", "read offset 2^63": "EINVAL",
        "read unknown flag 0x40": "EINVAL", "read with FUA": "OK", "write NO_HOLE": "EINVAL", "write DF": "EINVAL",
        "read REQ_ONE": "EINVAL", "trim FAST_ZERO": "EINVAL", "block_status, no ctx": "EINVAL",
    }
    bad = {k: (got[k], v) for k, v in expected.items() if got[k] != v}
    if got["zero FAST_ZERO"] not in ("OK", "ENOTSUP"): bad["zero FAST_ZERO"] = (got["zero FAST_ZERO"], "OK|ENOTSUP")
    return (not bad and alive, {"mismatches": bad, "zero-length read": zero_len, "alive": alive})

@check("E3.3 alignment")
def _():
    h = handle()
    minimum = h.get_block_size(nbd.SIZE_MINIMUM)
    if minimum <= 1:
        h.pwrite(b"\x5a" * 777, 1001)
        return (h.pread(777, 1001) == b"\x5a" * 777, "min=%d byte-granular" % minimum)
    h.set_strict_mode(0)
    return (errno_of(lambda: h.pread(512, 1)) == "EINVAL", "min=%d" % minimum)

@check("E3.4 write, FUA, zeroes with and without NO_HOLE, flush")
def _():
    h = handle()
    base = 70 * MiB
    h.pwrite(b"\xab" * 65536, base)
    h.pwrite(b"\xcd" * 4096, base + 65536, nbd.CMD_FLAG_FUA)
    h.zero(1000, base + 100)
    h.zero(3000, base + 5000, nbd.CMD_FLAG_NO_HOLE)
    h.flush()
    got = h.pread(65536 + 4096, base)
    want = bytearray(b"\xab" * 65536 + b"\xcd" * 4096)
    want[100:1100] = bytes(1000)
    want[5000:8000] = bytes(3000)
    return (got == bytes(want), "")

@check("E3.5 structured read tiling, holes zero, DF single chunk")
def _():
    h = handle()
    base = 80 * MiB
    h.pwrite(os.urandom(4096), base + 65536)
    length = 256 * 1024
    chunks = []
    def cb(buf, offset, status, err):
        chunks.append((offset, len(buf), status, bytes(buf)))
        return 0
    h.pread_structured(length, base, cb)
    spans = sorted((o, n) for o, n, s, b in chunks if s in (nbd.READ_DATA, nbd.READ_HOLE))
    pos = base
    for o, n in spans:
        if o != pos: return (False, "gap or overlap at %d" % o)
        pos += n
    if pos != base + length: return (False, "chunks do not cover the range")
    if any(s == nbd.READ_HOLE and b.count(0) != len(b) for o, n, s, b in chunks): return (False, "non-zero hole")
    df = []
    h.pread_structured(65536, base, lambda buf, o, s, e: df.append(s) or 0, nbd.CMD_FLAG_DF)
    return (len(df) == 1 and df[0] == nbd.READ_DATA, "%d chunks, DF chunks %r" % (len(chunks), df))

@check("E3.6 block status sane, written data never ZERO, REQ_ONE one extent")
def _():
    h = handle(meta=True)
    base = 90 * MiB
    h.pwrite(os.urandom(128 * 1024), base)
    h.flush()
    ents = []
    h.block_status(1 * MiB, base, lambda ctx, off, e, err: ents.append((ctx, off, list(e))) or 0)
    pairs = [(l, f) for ctx, off, e in ents if ctx == nbd.CONTEXT_BASE_ALLOCATION for l, f in zip(e[0::2], e[1::2])]
    if not pairs or any(l == 0 or f & ~3 for l, f in pairs): return (False, "bad extents %r" % pairs[:8])
    pos = base
    for l, f in pairs:
        if pos < base + 128 * 1024 and (f & 2): return (False, "written data reported as ZERO: %r" % pairs[:8])
        pos += l
    one = []
    h.block_status(1 * MiB, base, lambda ctx, off, e, err: one.append(list(e)) or 0, nbd.CMD_FLAG_REQ_ONE)
    ok_one = len(one) == 1 and len(one[0]) == 2 and 0 < one[0][0] <= 1 * MiB
    whole = []
    h.block_status(h.get_size(), 0, lambda ctx, off, e, err: whole.append(list(e)) or 0)
    return (ok_one and len(whole) == 1, "first extents %r; REQ_ONE %r" % (pairs[:4], one))

@check("E3.7 32 MiB write and read, 48 MiB read no desync")
def _():
    h = handle()
    maximum = min(h.get_block_size(nbd.SIZE_MAXIMUM) or 32 * MiB, 32 * MiB)
    data = os.urandom(maximum)
    h.pwrite(data, 100 * MiB)
    ok = h.pread(maximum, 100 * MiB) == data
    r = errno_of(lambda: h.pread(48 * MiB, 100 * MiB))
    return (ok and h.pread(4096, 100 * MiB) == data[:4096], "max=%d 48MiB read: %s" % (maximum, r))

@check("E3.8 64 aio writes and 64 aio reads in flight")
def _():
    h = handle()
    base = 140 * MiB
    datas = [os.urandom(65536) for _ in range(64)]
    cookies = [h.aio_pwrite(nbd.Buffer.from_bytearray(bytearray(d)), base + i * 65536) for i, d in enumerate(datas)]
    peak = h.aio_in_flight()
    for c in cookies:
        while not h.aio_command_completed(c): h.poll(-1)
    bufs = [nbd.Buffer(65536) for _ in range(64)]
    cookies = [h.aio_pread(b, base + i * 65536) for i, b in enumerate(bufs)]
    for c in cookies:
        while not h.aio_command_completed(c): h.poll(-1)
    return (all(bytes(b.to_bytearray()) == d for b, d in zip(bufs, datas)), "peak in flight %d" % peak)

@check("E3.9 multi-conn: write + FLUSH on A visible on B")
def _():
    a = handle(); b = handle()
    data = os.urandom(8192)
    a.pwrite(data, 150 * MiB + 512)
    a.flush()
    return (not a.can_multi_conn() or b.pread(8192, 150 * MiB + 512) == data, "multi_conn=%s" % a.can_multi_conn())

@check("E3.10 kernel-like session: no SR, no meta, no block size")
def _():
    h = handle(sr=False, block_size=False)
    if h.get_structured_replies_negotiated(): return (False, "SR negotiated")
    if h.can_df(): return (False, "SEND_DF advertised without SR")
    h.pwrite(b"\x42" * 4096, 160 * MiB)
    ok = h.pread(4096, 160 * MiB) == b"\x42" * 4096
    h.flush(); h.trim(4096, 160 * MiB + 8192); h.zero(4096, 160 * MiB)
    ok = ok and h.pread(4096, 160 * MiB) == bytes(4096)
    h.set_strict_mode(0)
    e = errno_of(lambda: h.pread(512, h.get_size()))
    ok = ok and e == "EINVAL" and h.pread(512, 160 * MiB) == bytes(512)
    return (ok, "past-end read %s" % e)

@check("E3.11 old clients: EXPORT_NAME with handshake flags 0, fixed newstyle without NO_ZEROES")
def _():
    h = handle(flags=0)
    p = h.get_protocol()
    ok = p == "newstyle" and len(h.pread(512, 0)) == 512
    g = handle(flags=nbd.HANDSHAKE_FLAG_FIXED_NEWSTYLE)
    return (ok and len(g.pread(512, 0)) == 512, "protocol %s" % p)

@check("E3.12 option mode: LIST, LIST_META_CONTEXT, INFO then GO report the same size")
def _():
    h = handle(opt=True)
    names = []
    h.opt_list(lambda n, d: names.append(n) or 0)
    ctxs = []
    h.opt_list_meta_context(lambda n: ctxs.append(n) or 0)
    h.opt_info()
    info_size = h.get_size()
    h.opt_go()
    return (len(names) >= 1 and nbd.CONTEXT_BASE_ALLOCATION in ctxs and info_size == h.get_size(), "exports %r contexts %r" % (names, ctxs))

@check("E3.13 unknown export name (INFO only), handshake continues")
def _():
    h = handle(opt=True)
    good = h.get_export_name()
    h.set_export_name("--bad-export")
    r = errno_of(lambda: h.opt_info())
    h.set_export_name(good)
    h.opt_go()
    return (len(h.pread(512, 0)) == 512, "INFO --bad-export: %s" % r)
`;
