"""The HTB policy a device has, read as traffic_shaping's state: the declared classes
by name in NIOC's words (reservation, limit, shares), what is not declared as `extra`
(tc's own words), bursts within tc's rounding of the planned ones read as planned.

Runs on the managed host: Python 3.9+, standard library only.
"""

try:  # under ansible-playbook, module_utils files travel with the module
    from ansible.module_utils import vnet_tc as tc
    from ansible.module_utils import vnet_tc_policy as tc_policy
except ImportError:  # vnetctl's runner preloads every module_utils file
    import vnet_tc as tc
    import vnet_tc_policy as tc_policy

mbit = tc_policy.mbit


def class_name(cid, parent, names):
    """The declared name of class `cid` whose parent is `parent`, or None (an extra one,
    or the parent class 1:1)."""
    if parent != "1:1" or not cid.startswith("1:"):
        return None
    return names.get(int(cid.partition(":")[2] or "0", 16))


def read_policy(dev, tcf, names, sizes=None):
    """The HTB policy on `dev` as state; `names`: {minor: class name} of the declared
    classes (the others are `extra`); `sizes` (link_sizes()): a burst within tc's
    rounding of the one sizing() gives at the rate read is read as that one."""
    qdiscs = tcf["qdiscs"].get(dev) or []
    root = next((q for q in qdiscs if q["root"]), None)
    if root is None or root["kind"] != "htb" or root["handle"] != "1:":
        return {"state": "absent", "root": root and "%s %s" % (root["kind"], root["handle"])}
    default = int(str((root.get("options") or {}).get("default", "0")), 16)
    classes = tcf["classes"].get(dev) or {}
    leaves = {q["parent"]: q["kind"] for q in qdiscs if q.get("parent")}
    parent = classes.get("1:1") or {}
    out = {"state": "present", "root": "htb default %#x" % default, "classes": {}, "extra": []}
    out["rate"], out["ceil"] = (
        mbit(parent[k]) if parent.get(k) else None for k in ("rate", "ceil")
    )
    count = len(names)  # the declared classes: an extra one changes no burst
    model = tc_policy.sizing(parent["rate"], sizes, count) if sizes and parent.get("rate") else None
    if model is not None:
        out["sizing"] = model
    out["burst"], out["cburst"] = (_burst(parent, k, model) for k in ("burst", "cburst"))
    by_id, tc_rows = {}, {}
    for cid, cls in sorted(classes.items()):
        name = class_name(cid, cls["parent"], names)
        info = {
            "id": cid,
            "rate": mbit(cls["rate"]),
            "ceil": mbit(cls["ceil"]),
            "prio": cls["prio"],
            "quantum": cls["quantum"],
            "burst": _burst(cls, "burst", model),
            "cburst": _burst(cls, "cburst", model),
            "leaf": leaves.get(cid),
        }
        if name is not None:
            out["classes"][name] = by_id[cid] = dict(info, filters=[])
            tc_rows[name] = cls
        elif cid != "1:1":
            out["extra"].append(_class_text(info, cls["parent"]))
    if model is not None and tc_rows:  # NIOC's words for what the operator declared
        words = tc_policy.nioc(tc_rows, parent["ceil"], model)
        for name, info in out["classes"].items():
            for key in ("rate", "ceil", "quantum"):
                del info[key]
            info.update(words[name])
    for rule in tcf["filters"].get(dev) or []:
        owner = by_id.get(rule.get("flowid"))
        if owner is not None:
            owner["filters"].append(tc.text(rule))
        else:
            flowid = " flowid " + rule["flowid"] if "flowid" in rule else ""
            out["extra"].append("filter " + tc.text(rule) + flowid)
    for info in by_id.values():
        info["filters"].sort()
    out["extra"].sort()
    return out


def _burst(cls, key, model):
    """A class's burst or cburst as read, or the planned one it rounds to: both sized at
    its ceil (its rate depends on every class's shares; its bursts on its own limit)."""
    read, ceil = cls.get(key), cls.get("ceil")
    if model is None or not ceil:
        return read
    planned = tc_policy.burst(ceil, model)
    return planned if tc_policy.settled(read, planned, max(ceil, cls.get("rate") or 0)) else read


def _class_text(info, parent):
    words = ["class", info["id"], "parent", parent or "root"]
    for key in ("rate", "ceil", "prio", "quantum", "burst", "cburst", "leaf"):
        if info[key] is not None:
            words += [key, str(info[key])]
    return " ".join(words)
