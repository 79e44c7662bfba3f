# nbdkit python plugin: a disk with a volatile write cache, for power-loss tests.
# Durable content lives in file=PATH. Completed writes stay in a cache (visible
# to reads) until FLUSH or FUA makes them durable; meanwhile the "disk" writes
# random cached sectors back on its own (like a real drive). Killing nbdkit
# loses whatever was still cached: power loss. Sector (512-byte) granular.
import os, random
import nbdkit

API_VERSION = 2
SECTOR = 512
path = None
seed = 1
eager = 0.2   # chance, per write, that the disk writes back some cached sectors
fd = -1
cache = {}    # sector -> bytes (newest unflushed content)
rnd = None

def config(key, value):
    global path, seed, eager
    if key == "file": path = value
    elif key == "seed": seed = int(value)
    elif key == "eager": eager = float(value)
    else: raise RuntimeError("unknown parameter " + key)

def config_complete():
    global fd, rnd
    if path is None: raise RuntimeError("file= is required")
    fd = os.open(path, os.O_RDWR)
    rnd = random.Random(seed)

def thread_model():
    return nbdkit.THREAD_MODEL_SERIALIZE_ALL_REQUESTS

def open(readonly):
    return 1

def get_size(h):
    return os.fstat(fd).st_size

def can_flush(h): return True
def can_fua(h): return nbdkit.FUA_NATIVE
def can_multi_conn(h): return True
def can_trim(h): return False
def can_zero(h): return False

def read_sector(s):
    if s in cache: return cache[s]
    return os.pread(fd, SECTOR, s * SECTOR).ljust(SECTOR, b"\0")

def pread(h, buf, offset, flags):
    first, last = offset // SECTOR, (offset + len(buf) - 1) // SECTOR
    data = b"".join(read_sector(s) for s in range(first, last + 1))
    start = offset - first * SECTOR
    buf[:] = data[start:start + len(buf)]

def write_back(sectors):
    for s in sectors:
        os.pwrite(fd, cache.pop(s), s * SECTOR)

def flush(h, flags):
    write_back(sorted(cache))
    os.fsync(fd)

def pwrite(h, buf, offset, flags):
    first, last = offset // SECTOR, (offset + len(buf) - 1) // SECTOR
    start = offset - first * SECTOR
    merged = bytearray(b"".join(read_sector(s) for s in range(first, last + 1)))
    merged[start:start + len(buf)] = buf
    for i, s in enumerate(range(first, last + 1)):
        cache[s] = bytes(merged[i * SECTOR:(i + 1) * SECTOR])
    if flags & nbdkit.FLAG_FUA:
        flush(h, 0)
    elif cache and rnd.random() < eager:
        write_back(rnd.sample(sorted(cache), rnd.randrange(1, len(cache) + 1)))
