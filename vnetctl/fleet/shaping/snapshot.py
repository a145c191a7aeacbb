"""Live shaping written back as `traffic_shaping` tasks (`vnetctl snapshot`).

This runs on the controller, from each host's gathered facts, as the shaping package's
snapshot hook, rather than as the module's own snapshot(): nothing of it then travels
to hosts, which compile every host-side library file for every play. It reads the
devices with the module's own read functions, and keeps a task only when the module's
planner, on the same facts, plans nothing for it: a device whose shaping is not this
layout, or is but cannot be declared exactly (a class no filter sends to, rates that
are not whole Mbit/s, quanta no shares give), is left out, and the host's note says so.
The kernel does not keep class names: classes are named by their id (`class-a4ff`,
pinned with `id`), the default class `default`.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from vnetctl.catalog import Catalog, Refused
from vnetctl.fleet.expanders import Expansion, SnapshotTasks

MODULE = "traffic_shaping"
LAYOUT_ROOT = "htb default 0x2"


async def snapshot_shaping(expansion: Expansion, tasks: SnapshotTasks) -> SnapshotTasks:
    catalog = expansion.run.catalog
    facts = await expansion.facts(list(tasks))
    out: SnapshotTasks = {}
    for host, host_tasks in tasks.items():
        out[host] = list(host_tasks)
        if not isinstance(facts.get(host), dict):
            continue
        declared, left_out = device_tasks(catalog, facts[host])
        out[host] += [(MODULE, params) for params in declared]
        for device in left_out:
            expansion.leave_out(host, f"shaping of {device} is not declarable: left out")
    return out


def device_tasks(catalog: Catalog, data: dict) -> tuple[list[dict], list[str]]:
    """(params of each shaped device, devices shaped in a way no params declare), from a
    host's gathered facts."""
    tcf = data.get("tc")  # none in facts recorded before traffic_shaping existed
    if not tcf:
        return [], []
    module, facts = catalog.load(MODULE), catalog.facts(data)
    shaped = {dev: module.read_ingress(dev, tcf, facts) for dev in sorted(tcf["qdiscs"])}
    targets = {i["ifb"] for i in shaped.values() if i["state"] == "present"}
    out, left_out = [], []
    for dev in sorted(set(shaped) - targets):
        if not _shaped(dev, tcf, shaped[dev]):
            continue
        params = declared_params(module, dev, tcf, facts)
        if params is not None and plans_nothing(catalog, params, facts):
            out.append(params)
        else:
            left_out.append(dev)
    return by_ovs_port(catalog, out, data.get("ovs_ports") or {}, facts), left_out


def by_ovs_port(catalog: Catalog, tasks: list[dict], ports: dict, facts: Any) -> list[dict]:
    """The members of an OVS port that the shaper gave its linux-noop QoS, shaped alike,
    as the one `ovs: true` task that shaped them; the others device by device."""
    by_name = {params["name"]: params for params in tasks}
    for port, info in sorted(ports.items()):
        members = info["interfaces"]
        if info["qos"] != "linux-noop" or not members or not set(members) <= set(by_name):
            continue
        alike = [{k: v for k, v in by_name[m].items() if k != "name"} for m in members]
        params = dict(name=port, ovs=True, **alike[0])
        if all(a == alike[0] for a in alike) and plans_nothing(catalog, params, facts):
            for member in members:
                del by_name[member]
            by_name[port] = params
    return [by_name[name] for name in sorted(by_name)]


def _shaped(dev: str, tcf: dict, ingress: dict) -> bool:
    roots = [q for q in tcf["qdiscs"][dev] if q["root"]]
    return ingress["state"] == "present" or any(
        q["kind"] == "htb" and q["handle"] == "1:" for q in roots
    )


def declared_params(module: ModuleType, dev: str, tcf: dict, facts: Any) -> dict | None:
    link = facts.link(dev)
    if link is None:
        return None
    classes = tcf["classes"].get(dev) or {}
    names = {_minor(c): "default" if _minor(c) == 2 else f"class-{_minor(c):x}"
             for c, info in classes.items() if info["parent"] == "1:1"}  # fmt: skip
    state = module.read_policy(dev, tcf, names, module.link_sizes(link))
    params: dict[str, Any] = {"name": dev}
    if state["state"] == "present":
        if state["root"] != LAYOUT_ROOT or not isinstance(state["rate"], int):
            return None
        listed = classes_of(state) if "sizing" in state else None
        if listed is None:
            return None
        leaves = {c["leaf"] for c in state["classes"].values()}
        if len(leaves) == 1 and leaves <= {"fq_codel", "pfifo"}:
            params["leaf_qdisc"] = leaves.pop()
        only = state["classes"].get("default") or {}
        if len(state["classes"]) == 1 and only.get("reservation") is only.get("limit") is None:
            params["egress_limit"] = state["rate"]
        else:
            params.update(speed=state["rate"], classes=listed)
    ingress = module.read_ingress(dev, tcf, facts)
    if ingress["state"] == "present" and isinstance(ingress.get("policy", {}).get("rate"), int):
        params["ingress_limit"] = ingress["policy"]["rate"]
    return params if len(params) > 1 else None


def _minor(classid: str) -> int:
    return int(classid.partition(":")[2] or "0", 16)


def classes_of(state: dict) -> list[dict] | None:
    """The classes, in the order of their first filter (the default last), or None where
    one is not declarable: shares that are not 1..100, rates that are not whole Mbit/s."""
    classes = state["classes"]
    if "default" not in classes:
        return None

    def first_pref(item: tuple[str, dict]) -> int:
        filters = item[1]["filters"]
        return int(filters[0].split()[1]) if filters else 1 << 20

    out = []
    for name, info in sorted(classes.items(), key=first_pref):
        if name != "default" and not info["filters"]:
            return None  # nothing is sent to it: only the default class may be so
        shares = info.get("shares")
        if not isinstance(shares, int) or not 1 <= shares <= 100:
            return None
        entry: dict[str, Any] = {"name": name, "shares": shares}
        if name != "default":
            entry["id"] = _minor(info["id"])
            entry["match"] = matches(info["filters"])
        for key in ("reservation", "limit"):
            if info[key] is not None:
                if not isinstance(info[key], int):
                    return None
                entry[key] = info[key]
        out.append(entry)
    return out


PROTOCOL_NAMES = {1: "icmp", 2: "igmp", 6: "tcp", 17: "udp", 47: "gre", 50: "esp", 51: "ah",
                  58: "icmpv6", 132: "sctp", 136: "udplite"}  # fmt: skip


def matches(filters: list[str]) -> list[dict]:
    """One class's filter texts ("pref 10 ip protocol tcp dport 22") as `match` entries;
    an IPv4 filter followed by the IPv6 one with the same fields is one entry for both."""
    rules = sorted((_rule(text.split()) for text in filters), key=lambda r: r["pref"])
    out: list[dict] = []
    skip = set()
    for i, rule in enumerate(rules):
        if i in skip:
            continue
        entry = {k: v for k, v in rule.items() if k not in ("pref", "proto")}
        pair = rules[i + 1] if i + 1 < len(rules) else None
        both = (
            rule["proto"] == "ip" and pair is not None and pair["proto"] == "ipv6"
            and pair["pref"] == rule["pref"] + 1 and _fields(pair) == _fields(rule)
            and not {"src", "dst"} & set(rule) and rule.get("protocol") not in ("icmp", "icmpv6")
        )  # fmt: skip
        if both:
            skip.add(i + 1)
        elif rule["proto"] in ("ip", "ipv6") and not {"src", "dst"} & set(rule):
            entry["family"] = "ipv4" if rule["proto"] == "ip" else "ipv6"
        out.append(entry)
    return out


def _fields(rule: dict) -> dict:
    return {k: v for k, v in rule.items() if k not in ("pref", "proto")}


def _rule(words: list[str]) -> dict[str, Any]:
    """A filter text as {pref, proto, and each field}: ports stay as written ("22",
    "49152-49215"), as a match takes them."""
    rule: dict[str, Any] = {"pref": int(words[1]), "proto": words[2]}
    for key, value in zip(words[3::2], words[4::2], strict=False):
        if key in ("dscp", "vlan") or (key in ("sport", "dport") and value.isdigit()):
            rule[key] = int(value)
        elif key == "fwmark":
            rule[key] = int(value, 16)
        else:
            rule[key] = value
    return rule


def plans_nothing(catalog: Catalog, params: dict, facts: Any) -> bool:
    """The task, applied to the host it was read from, would change nothing."""
    try:
        return not catalog.plan(MODULE, params, facts)["changes"]
    except Refused:
        return False
