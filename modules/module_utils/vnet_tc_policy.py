"""The HTB policy traffic_shaping declares for a device, from its classes: a parent at
the link's capacity, per class a rate (its guarantee under full contention: its
reservation and its shares of what the reservations leave, vnet_tc_guarantees), a ceiling
(its limit, else the capacity), a quantum in proportion to its shares (vSphere's low,
normal and high, or 1..100), bursts sized from what the device sends (sizing()) and its
filters; the class without `match` (or an implicit `default`) takes the rest. Class ids
come from class names, so a moved number is one `tc class change`. The state says each
class in NIOC's words (reservation, limit, shares): changing one class's words changes
every class's rate in tc, but only that class's words.

Runs on the managed host: Python 3.9+, standard library only.
"""

import zlib

try:  # under ansible-playbook, module_utils files travel with the module
    from ansible.module_utils import vnet_tc as tc
    from ansible.module_utils import vnet_tc_guarantees as tc_guarantees
    from ansible.module_utils import vnet_tc_plan as tc_plan
except ImportError:  # vnetctl's runner preloads every module_utils file
    import vnet_tc as tc
    import vnet_tc_guarantees as tc_guarantees
    import vnet_tc_plan as tc_plan

PolicyError = tc_plan.PolicyError
SHARES = {"low": 25, "normal": 50, "high": 100}  # vSphere's levels
NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
DEFAULT_MINOR = 2


def mbit(kbit):
    return kbit // 1000 if kbit % 1000 == 0 else kbit / 1000.0


def kbit(mbits):
    return int(round(mbits * 1000))


def policy(declared, capacity, sizes, leaf, features):
    """The HTB state the classes ask for on a link of `capacity` kbit/s; `sizes`: the
    device's {"frame": MTU + 14, "packet": its largest packet, a GSO one}."""
    classes = _with_default(declared)
    shares = {c["name"]: _shares(c) for c in classes}
    _check_rates(classes, capacity)
    ids = class_ids(classes)
    rules = tc_plan.rules(classes, features)
    model = sizing(capacity, sizes, len(classes))
    per_share = model["quantum_per_share"]
    quanta = {c["name"]: shares[c["name"]] * per_share for c in classes}
    asked = {c["name"]: {"reservation": c.get("reservation"), "quantum": quanta[c["name"]]}
             for c in classes}  # fmt: skip
    model["kbit_per_share"] = tc_guarantees.unit(asked, capacity, per_share)
    rates = tc_guarantees.guarantees(asked, per_share, model["kbit_per_share"])
    ceils = {c["name"]: kbit(c["limit"]) if c.get("limit") else capacity for c in classes}
    rows = {n: {"rate": rates[n], "ceil": ceils[n], "quantum": quanta[n]} for n in rates}
    words = nioc(rows, capacity, model)
    state = {}
    for cls in classes:
        name = cls["name"]
        state[name] = dict(
            words[name],
            id="1:%x" % ids[name],
            prio=0,
            burst=burst(ceils[name], model),  # the rate moves with every class's shares
            cburst=burst(ceils[name], model),
            leaf=leaf,
            filters=sorted(tc.text(r) for r in rules.get(name, [])),
        )
    return {
        "state": "present",
        "root": "htb default %#x" % DEFAULT_MINOR,
        "rate": mbit(capacity),
        "ceil": mbit(capacity),
        "burst": burst(capacity, model),
        "cburst": burst(capacity, model),
        "sizing": model,
        "classes": state,
        "extra": [],
    }


def nioc(rows, capacity, model):
    """{name: {reservation, limit, shares, rate}}: NIOC's words, as state and drift show
    them, for classes {name: {rate, ceil (kbit/s), quantum (bytes)}} as tc holds them:
    reservations from the rates (vnet_tc_guarantees.words(): the unit it finds goes into
    `model` as kbit_per_share; a rate nothing explains stays as `rate`, tc's number,
    else `rate` is null),
    limit none where the ceil is the link's, shares the quantum per share (a fraction
    where set by hand)."""
    per_share = model["quantum_per_share"]
    quanta = {n: r.get("quantum") for n, r in rows.items()}
    rates = {n: r["rate"] for n, r in rows.items()}
    model["kbit_per_share"], out = tc_guarantees.words(rates, quanta, per_share)
    for name, row in rows.items():
        quantum, shares = row.get("quantum"), None
        if quantum is not None:
            shares = (
                quantum // per_share if quantum % per_share == 0 else round(quantum / per_share, 6)
            )
        out[name].setdefault("rate", None)  # present, so a rate set by hand is a change
        out[name].update(
            limit=None if row["ceil"] == capacity else mbit(row["ceil"]), shares=shares
        )
    return out


MAX_SHARES, MIN_ROUND_US = 100, 10000


def sizing(capacity, sizes, count):
    """The numbers every class's quantum and bursts come from, and why (the state's
    `sizing`, shown by --diff). HTB serves a class below its rate from its own tokens
    first (the rates: vnet_tc_guarantees); what the rates leave (idle classes) goes round
    robin (sch_htb, DRR) to the classes that borrow, a quantum of bytes per turn but at
    least one packet. A TCP flow's queue runs empty many times a second, and every time
    the next class gets its turn: with short turns a class of small shares takes far
    more than its share (measured on the lab: reservation 30 at shares 1 beside shares
    100 got 38 of 100 Mbit/s with 3 KB per share, 29.4 with 16 KB). So a share is a
    quarter of the largest packet the device is handed (its GSO size: 16 KiB of 64 KiB),
    two frames at least; a class's quantum depends on its own shares only. A class's
    tokens only count up to its burst: waiting longer for its turn loses the time, and a
    limited class starves under contention (tc's default, 1600 bytes, is 0.4 ms at 30
    Mbit/s). Bursts therefore cover the longest wait at the class's ceil (its rate moves
    with every class's shares, its ceil is its own), a quantum at shares 100 of each of
    the `count` - 1 other classes at the link's speed (at least 10 ms), plus the largest
    packet."""
    frame, packet = sizes["frame"], max(sizes["frame"], sizes.get("packet") or 0)
    per_share = max(2 * frame, packet // 4)
    bytes_per_s = capacity * 125
    others = max(0, count - 1) * MAX_SHARES * per_share
    round_us = max(MIN_ROUND_US, -(-others * 10**6 // bytes_per_s))
    return {
        "quantum_per_share": per_share,
        "burst_time_us": round_us,
        "packet": packet,
        "why": "rate = reservation + shares x kbit_per_share ((link - reservations) / all "
        "shares): each class's share under full contention, whatever its queue does (one "
        "class's new shares or reservation change kbit_per_share, so every class's rate "
        "in tc, and only that class's words); "
        "quantum = shares x %d B (a quarter of the largest packet, two frames at least) "
        "for what idle classes leave; burst = cburst = ceil x %d us (a quantum at shares 100 of "
        "each of %d other classes at %s Mbit/s, 10 ms at least) + %d B (the largest "
        "packet the device is handed)"
        % (per_share, round_us, max(0, count - 1), mbit(capacity), packet),
    }


def burst(rate_kbit, model):
    """Bytes a class up to `rate_kbit` (its ceil) may send at once (see sizing())."""
    return rate_kbit * 125 * model["burst_time_us"] // 10**6 + model["packet"]


def settled(read, planned, rate_kbit):
    """Whether `read` (bytes, as tc reads a burst back) is `planned`: tc stores bursts
    as times, rounded to whole microseconds and ticks, so a few bytes per µs at the
    class's rate come back different."""
    slack = max(64, 4 * rate_kbit * 125 // 10**6)
    return read is not None and planned is not None and abs(read - planned) <= slack


def _with_default(declared):
    names = [c.get("name") for c in declared]
    for name in names:
        if not isinstance(name, str) or not _class_name(name):
            raise PolicyError(
                "class name %r: use 1 to 32 letters, digits, '_' or '-', "
                "starting with a letter" % (name,)
            )
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise PolicyError("class %s is declared more than once" % ", ".join(twice))
    defaults = [c["name"] for c in declared if c.get("match") is None]
    if len(defaults) > 1:
        raise PolicyError(
            "classes %s have no match: only one class (the default, which "
            "catches the rest) may leave it out" % ", ".join(defaults)
        )
    for cls in declared:
        if cls.get("match") == []:
            raise PolicyError(
                "class %s: match is empty (leave it out for the default class)" % cls["name"]
            )
    if defaults:
        return list(declared)
    if "default" in names:
        raise PolicyError("class default has a match: the class named default catches the rest")
    return list(declared) + [{"name": "default", "shares": "normal"}]


def _class_name(name):
    return (
        1 <= len(name) <= 32 and name[0].isascii() and name[0].isalpha() and set(name) <= NAME_CHARS
    )


def _shares(cls):
    value = cls.get("shares", "normal")
    if value is None:
        value = "normal"
    if isinstance(value, str) and value.strip().lower() in SHARES:
        return SHARES[value.strip().lower()]
    number = value if isinstance(value, int) and not isinstance(value, bool) else None
    if isinstance(value, str) and value.strip().isdigit():
        number = int(value)
    if number is None or not 1 <= number <= 100:
        raise PolicyError(
            "class %s: shares %r is not low, normal, high or 1..100" % (cls["name"], value)
        )
    return number


def _check_rates(classes, capacity):
    speed = mbit(capacity)
    total = sum(c.get("reservation") or 0 for c in classes)
    if kbit(total) * 4 > capacity * 3:
        raise PolicyError(
            "reservations add up to %s Mbit/s, more than 75 %% of %s Mbit/s "
            "(%s Mbit/s)" % (total, speed, mbit(capacity * 3 // 4))
        )
    for cls in classes:
        res, limit = cls.get("reservation"), cls.get("limit")
        if res and limit and res > limit:
            raise PolicyError(
                "class %s: reservation %d Mbit/s is above its limit %d Mbit/s"
                % (cls["name"], res, limit)
            )
        if limit and kbit(limit) > capacity:
            raise PolicyError(
                "class %s: limit %d Mbit/s is above the link's %s Mbit/s"
                % (cls["name"], limit, speed)
            )


def class_ids(classes, strict=True):
    """{class name: minor}: the default 2, pinned ids as given, the others from a hash
    of the name (probing on a collision)."""
    span = 0xFEFF - 0x10 + 1
    out, taken = {}, {1, DEFAULT_MINOR}
    for cls in classes:
        if isinstance(cls, dict) and cls.get("match") is None and cls.get("name"):
            out[cls["name"]] = DEFAULT_MINOR
    if DEFAULT_MINOR not in out.values():
        out["default"] = DEFAULT_MINOR
    pinned = [c for c in classes if isinstance(c, dict) and c.get("id") and c["name"] not in out]
    for cls in pinned:
        if cls["id"] in taken and strict:
            raise PolicyError("class %s: id %d is used twice" % (cls["name"], cls["id"]))
        out[cls["name"]] = cls["id"]
        taken.add(cls["id"])
    for cls in sorted(
        (c for c in classes if isinstance(c, dict) and c.get("name") not in out),
        key=lambda c: str(c.get("name")),
    ):
        minor = 0x10 + zlib.crc32(str(cls["name"]).encode()) % span
        while minor in taken:
            minor = 0x10 + (minor - 0x10 + 1) % span
        out[cls["name"]] = minor
        taken.add(minor)
    return out
