"""HTB classes as tc prints them (`tc -j -s -d class show dev D`), rates (kbit/s) and
sizes (bytes) as tc prints and reads them. vnet_tc reads the classes through it.

Runs on the managed host: Python 3.9+, standard library only.
"""

try:  # under ansible-playbook, module_utils files travel with the module
    from ansible.module_utils import vnet_core
except ImportError:  # vnetctl's runner preloads every module_utils file
    import vnet_core

RATE_UNITS = {p + i + "bit": (1024 if i else 1000) ** n for n, p in enumerate("KMGT", 1)
              for i in ("", "i")}  # fmt: skip
RATE_UNITS["bit"] = 1
SIZE_UNITS = {"b": 1, "Kb": 1024, "Mb": 1024**2, "Gb": 1024**3}


def parse_rate(text):
    """tc's printed rate ("100Kbit", "1.5Mbit", "2Mibit") in kbit/s."""
    return int(round(_scaled(text, "KMGTbit", RATE_UNITS, "rate") / 1000))


def parse_size(text):
    """tc's printed size ("66586b", "64Kb/1": the cell's log) in bytes."""
    return int(round(_scaled(text.partition("/")[0], "KMGb", SIZE_UNITS, "size")))


def _scaled(text, letters, units, what):
    number = text.rstrip(letters)
    scale = units.get(text[len(number) :])
    if scale is None or not number or number.strip("0123456789."):
        raise vnet_core.ModuleError("tc printed a %s this module cannot read: %r" % (what, text))
    return float(number) * scale


def format_rate(kbit):
    return "%dmbit" % (kbit // 1000) if kbit % 1000 == 0 else "%dkbit" % kbit


def parse_classes(output, loads):
    """{classid: {kind, parent, leaf, prio, quantum, rate, ceil, burst, cburst}} (bursts in
    bytes) from `tc -j -s -d class show dev D`: JSON where iproute2 prints it, its text
    otherwise (iproute2 6.1); `loads`: vnet_tc's JSON reader. With -s, a class's counters
    too, under "stats" (STATS: sent bytes and packets, drops, overlimits, backlog in
    bytes and packets)."""
    if output.lstrip().startswith("["):
        rows = [_json_class(c) for c in loads(output)]
    else:
        rows = []
        for ln in output.splitlines():
            if ln.startswith("class "):
                rows.append(_text_class(ln.split()))
            elif rows and ln.startswith(" "):
                _text_stats(rows[-1], ln.replace("(", " ").replace(")", " ").replace(",", " "))
    return {row.pop("handle"): row for row in rows}


STATS = ("bytes", "packets", "drops", "overlimits", "backlog", "qlen")
# the words of tc's text before each counter (" Sent 9 bytes 3 pkt (dropped 0, overlimits 1
# requeues 0)", " backlog 0b 0p requeues 0"): (word before, word after or None, key)
TEXT_STATS = {("Sent", "bytes"): "bytes", ("bytes", "pkt"): "packets",
              ("dropped", None): "drops", ("overlimits", None): "overlimits"}  # fmt: skip


def _text_stats(row, text):
    words = text.split()
    stats = row.setdefault("stats", dict.fromkeys(STATS, 0))
    for i, (before, value) in enumerate(zip(words, words[1:])):
        after = words[i + 2] if i + 2 < len(words) else None
        key = TEXT_STATS.get((before, after)) or TEXT_STATS.get((before, None))
        if key and value.isdigit():
            stats[key] = int(value)
        elif before == "backlog" and after and after.endswith("p") and after[:-1].isdigit():
            stats["backlog"], stats["qlen"] = parse_size(value), int(after[:-1])


def _json_class(item):
    row = {k: item.get(k) for k in ("handle", "leaf", "prio", "quantum")}
    row.update(kind=item.get("class"), parent=None if item.get("root") else item.get("parent"))
    for key in ("rate", "ceil"):  # bytes/s in JSON
        row[key] = int(round(item[key] * 8 / 1000)) if key in item else None
    for key in ("burst", "cburst"):  # bytes in JSON
        row[key] = parse_size(item[key]) if isinstance(item.get(key), str) else item.get(key)
    counters = item.get("stats") if isinstance(item.get("stats"), dict) else item
    if "bytes" in counters:  # with -s: print_tcstats2_attr's keys
        row["stats"] = {k: int(counters.get(k) or 0) for k in STATS}
    return row


CLASS_WORDS = {"parent": str, "leaf": str, "prio": int, "quantum": int, "rate": parse_rate,
               "ceil": parse_rate, "burst": parse_size, "cburst": parse_size}  # fmt: skip


def _text_class(words):
    row = dict.fromkeys(CLASS_WORDS)
    row.update(kind=words[1], handle=words[2])
    for key, value in zip(words[3:], words[4:]):
        if key in CLASS_WORDS and (CLASS_WORDS[key] is not int or value.isdigit()):
            row[key] = CLASS_WORDS[key](value)
    return row
