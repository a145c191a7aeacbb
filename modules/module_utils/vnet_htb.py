"""HTB classes as tc prints them (`tc -j -d class show dev D`), rates (kbit/s) and
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
    bytes) from `tc -j -d class show dev D`: JSON where iproute2 prints it, its text
    otherwise (iproute2 6.1); `loads`: vnet_tc's JSON reader."""
    if output.lstrip().startswith("["):
        rows = [_json_class(c) for c in loads(output)]
    else:
        rows = [_text_class(ln.split()) for ln in output.splitlines() if ln.startswith("class ")]
    return {row.pop("handle"): row for row in rows}


def _json_class(item):
    row = {k: item.get(k) for k in ("handle", "leaf", "prio", "quantum")}
    row.update(kind=item.get("class"), parent=None if item.get("root") else item.get("parent"))
    for key in ("rate", "ceil"):  # bytes/s in JSON
        row[key] = int(round(item[key] * 8 / 1000)) if key in item else None
    for key in ("burst", "cburst"):  # bytes in JSON
        row[key] = parse_size(item[key]) if isinstance(item.get(key), str) else item.get(key)
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
