# Verifies an export against a writer's state: every 512-byte unit reads as its
# initial content (zeroes) or as a version of itself between the durable floor
# and the newest issued version; never another unit's data, never garbage.
# Prints a JSON map unit -> version seen (0 = initial), or exits 1 listing violations.
# Usage: nbd-verify.py URI STATE_JSON UNITS OBSERVED_JSON [EXPECT_OBSERVED_JSON]
import json, struct, sys
import nbd

UNIT = 512
uri, state_path, units, observed_path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
expect = json.load(open(sys.argv[5])) if len(sys.argv) > 5 else None
state = json.load(open(state_path))
issued = {int(k): v for k, v in state["issued"].items()}
durable = {int(k): v for k, v in state["durable"].items()}
h = nbd.NBD()
h.connect_uri(uri)
data = bytearray()
CHUNK = 4 * 1024 * 1024
for offset in range(0, units * UNIT, CHUNK):
    data += h.pread(min(CHUNK, units * UNIT - offset), offset)
h.shutdown()
violations, observed = [], {}
zero = bytes(UNIT)
for unit in range(units):
    content = bytes(data[unit * UNIT:(unit + 1) * UNIT])
    if content == zero:
        version = 0
    else:
        owner, version = struct.unpack("<QQ", content[:16])
        if content != content[:16] * (UNIT // 16):
            violations.append(f"unit {unit}: garbage or torn inside a sector"); continue
        if owner != unit:
            violations.append(f"unit {unit}: holds unit {owner}'s data (version {version})"); continue
    if version < durable.get(unit, 0):
        violations.append(f"unit {unit}: version {version} is older than durable version {durable[unit]}")
    if version > issued.get(unit, 0):
        violations.append(f"unit {unit}: version {version} was never written (newest issued {issued.get(unit, 0)})")
    if expect is not None and expect.get(str(unit), 0) != version:
        violations.append(f"unit {unit}: changed without a write ({expect.get(str(unit), 0)} -> {version})")
    observed[unit] = version
json.dump(observed, open(observed_path, "w"))
if violations:
    print(f"{len(violations)} violations", *violations[:20], sep="\n")
    sys.exit(1)
print(json.dumps({"units": units, "written": sum(1 for v in observed.values() if v > 0)}))
