# Writes self-describing 512-byte units to an NBD export until the server dies
# or the write budget is spent, and records which version of each unit was
# issued (the newest that may be there) and which is durable (acknowledged
# before a completed FLUSH, or written with FUA). Used by the kill / power-loss
# tests. Usage: nbd-writer.py URI STATE_JSON UNITS SEED MAX_WRITES
import json, os, random, struct, sys
import nbd

UNIT = 512
uri, state_path, units, seed, max_writes = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
state = json.load(open(state_path)) if os.path.exists(state_path) else {"issued": {}, "durable": {}}
issued = {int(k): v for k, v in state["issued"].items()}
durable = {int(k): v for k, v in state["durable"].items()}
acked = dict(durable)
rnd = random.Random(seed)

def unit_content(unit, version):
    return struct.pack("<QQ", unit, version) * (UNIT // 16)

def save():
    tmp = state_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"issued": issued, "durable": durable}, f)
        f.flush(); os.fsync(f.fileno())
    os.rename(tmp, state_path)

h = nbd.NBD()
h.connect_uri(uri)
writes = 0
try:
    while writes < max_writes:
        first = rnd.randrange(units)
        run = 1 if rnd.random() < 0.7 else min(units - first, rnd.randrange(2, 40))
        data = bytearray()
        for unit in range(first, first + run):
            issued[unit] = issued.get(unit, 0) + 1
            data += unit_content(unit, issued[unit])
        fua = rnd.random() < 0.03
        h.pwrite(bytes(data), first * UNIT, nbd.CMD_FLAG_FUA if fua else 0)
        for unit in range(first, first + run):
            acked[unit] = issued[unit]
            if fua:
                durable[unit] = issued[unit]
        writes += 1
        if writes % 40 == 0:
            h.flush()
            durable.update(acked)
            save()
except nbd.Error as error:
    print("writer stopped:", error.string, file=sys.stderr)
save()
print(json.dumps({"writes": writes}))
