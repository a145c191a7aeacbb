"""The HTB policy traffic_shaping declares for a device, from its classes: a parent at
the link's capacity, per class a rate (its reservation, else a floor), a ceiling (its
limit, else the capacity), a quantum in proportion to its shares (vSphere's low, normal
and high, or 1..100) and its filters; the class without `match` (or an implicit
`default`) takes the rest. Class ids come from class names, so a moved number is one
`tc class change`.

Runs on the managed host: Python 3.9+, standard library only.
"""

import zlib

try:  # under ansible-playbook, module_utils files travel with the module
    from ansible.module_utils import vnet_tc as tc
    from ansible.module_utils import vnet_tc_plan as tc_plan
except ImportError:  # vnetctl's runner preloads every module_utils file
    import vnet_tc as tc
    import vnet_tc_plan as tc_plan

PolicyError = tc_plan.PolicyError
SHARES = {"low": 25, "normal": 50, "high": 100}  # vSphere's levels
NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
DEFAULT_MINOR = 2


def mbit(kbit):
    return kbit // 1000 if kbit % 1000 == 0 else kbit / 1000.0


def kbit(mbits):
    return int(round(mbits * 1000))


def policy(declared, capacity, frame, leaf, features):
    """The HTB state the classes ask for on a link of `capacity` kbit/s."""
    classes = _with_default(declared)
    shares = {c["name"]: _shares(c) for c in classes}
    _check_rates(classes, capacity)
    ids = class_ids(classes)
    floor = capacity if len(classes) == 1 else max(8, capacity // 1000)
    rules = tc_plan.rules(classes, features)
    least = min(shares.values())
    state = {}
    for cls in classes:
        name = cls["name"]
        state[name] = {
            "id": "1:%x" % ids[name],
            "rate": mbit(kbit(cls["reservation"]) if cls.get("reservation") else floor),
            "ceil": mbit(kbit(cls["limit"]) if cls.get("limit") else capacity),
            "prio": 0,
            "quantum": -(-shares[name] * frame // least),
            "leaf": leaf,
            "filters": sorted(tc.text(r) for r in rules.get(name, [])),
        }
    return {
        "state": "present",
        "root": "htb default %#x" % DEFAULT_MINOR,
        "rate": mbit(capacity),
        "ceil": mbit(capacity),
        "classes": state,
        "extra": [],
    }


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
