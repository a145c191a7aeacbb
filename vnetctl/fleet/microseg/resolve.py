"""Security groups resolved from the fleet: which VMs each group holds, and each host's
own policy (the per-host form, vnet_microseg_ir) computed from them.

The VMs are every host's `vms` argument of the task (usually `{{ vms }}` from the
inventory: name, mac, port, addresses, port_group, metadata), rendered for every host of
the play, also those outside --limit: a rule naming a group on another host uses that
host's VMs' current addresses. A VM belongs to a group when it matches every key of the
group's `members` selector:

    name        shell pattern(s) of the VM's name (libvirt's domain name)
    metadata    {key: value} the VM's metadata holds (libvirt domain metadata)
    port_group  the VM's port group
    hosts       an inventory host pattern (a group of the inventory, a host's name)
    macs        its MAC is one of these
    addresses   one of its addresses is in one of these networks
    vars        {key: value} the inventory variables of the host it runs on hold (a
                VM has no inventory entry of its own: `metadata` is the VM's side)

The VMs are also those each host's libvirt runs with a NIC on the task's bridge (its
status files: name, MAC, tap, port group, vnetctl metadata), merged by MAC with the
declared ones (discover).

A VM in several groups gets their rules in the groups' order, and for each direction
the strictest of their defaults (drop, then reject, then allow); unset: ingress drop,
egress allow."""

from __future__ import annotations

import fnmatch
import ipaddress
from typing import Any

from vnetctl.catalog import Catalog


def strictest(defaults: list[str]) -> str:
    """The host library's rule (vnet_microseg_ir.strictest), one piece of code for the
    controller and the attach-time hook."""
    return Catalog().load("security_groups").microseg_ir.strictest(defaults)


SELECTORS = ("name", "metadata", "port_group", "hosts", "macs", "addresses", "vars")
DEFAULTS = {"ingress": "drop", "egress": "allow"}
PEER_KEY = {"ingress": "from", "egress": "to"}


class Bad(Exception):
    """A declaration that cannot be resolved: the argument at fault and why."""

    def __init__(self, message: str, argument: str = "groups"):
        super().__init__(message)
        self.argument = argument


def check_groups(groups: list[dict]) -> None:
    """Selectors and rules that name what exists: Bad otherwise."""
    names = [g["name"] for g in groups]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise Bad(f"group {dupes[0]!r} is declared twice")
    for group in groups:
        members = group.get("members") or {}
        unknown = sorted(set(members) - set(SELECTORS))
        if not members or unknown:
            raise Bad(
                f"group {group['name']!r}: members selects by {', '.join(SELECTORS)}"
                + (f" (not {', '.join(unknown)})" if unknown else " (none given)")
            )
        for network in members.get("addresses") or []:
            _network(network, f"group {group['name']!r} members.addresses")
        for direction, key in PEER_KEY.items():
            for i, rule in enumerate(group.get(direction) or []):
                where = f"group {group['name']!r} {direction}[{i}]"
                other = PEER_KEY["egress" if direction == "ingress" else "ingress"]
                if rule.get(other) is not None:
                    raise Bad(f"{where}: an {direction} rule names its peers with {key!r}, "
                              f"not {other!r}")  # fmt: skip
                for peer in rule.get(key) or ["any"]:
                    if peer != "any" and peer not in names:
                        _network(peer, f"{where} {key}", also="a group, ")


def _network(text: Any, where: str, also: str = "") -> ipaddress._BaseNetwork:
    try:
        if "%" in str(text):
            raise ValueError("a scope id is not accepted")
        return ipaddress.ip_network(str(text), strict=False)
    except ValueError as exc:
        raise Bad(f"{where}: {text!r} is not {also}a network or address, nor any ({exc})") from None


def matches(selector: dict, vm: dict, host: str, hosts_of, vars_of=None) -> bool:
    """Whether `vm` (on `host`) matches every key of `selector`; `hosts_of(pattern)` is
    the inventory's hosts for a pattern, `vars_of(host)` its inventory variables."""
    if not _vars_match(selector, host, vars_of):
        return False
    names = selector.get("name")
    if names is not None:
        patterns = [names] if isinstance(names, str) else list(names)
        if not any(fnmatch.fnmatchcase(vm["name"], p) for p in patterns):
            return False
    metadata = selector.get("metadata") or {}
    if any((vm.get("metadata") or {}).get(k) != v for k, v in metadata.items()):
        return False
    if selector.get("port_group") is not None and vm.get("port_group") != selector["port_group"]:
        return False
    if selector.get("hosts") is not None and host not in hosts_of(selector["hosts"]):
        return False
    if selector.get("macs") is not None and vm["mac"].lower() not in {
        m.lower() for m in selector["macs"]
    }:
        return False
    if selector.get("addresses") is not None:
        nets = [_network(n, "members.addresses") for n in selector["addresses"]]
        mine = [ipaddress.ip_interface(a).ip for a in vm.get("addresses") or []]
        if not any(ip in net for ip in mine for net in nets if ip.version == net.version):
            return False
    return True


def _vars_match(selector: dict, host: str, vars_of) -> bool:
    wanted = selector.get("vars") or {}
    have = vars_of(host) if wanted and vars_of is not None else {}
    return all(k in have and have[k] == v for k, v in wanted.items())


def membership(groups: list[dict], vms_by_host: dict[str, list[dict]], hosts_of,
               vars_of=None) -> dict:  # fmt: skip
    """{group: [(host, vm)]} in hosts' and VMs' order."""
    return {
        g["name"]: [
            (h, vm)
            for h, vms in vms_by_host.items()
            for vm in vms
            if matches(g["members"], vm, h, hosts_of, vars_of)
        ]  # fmt: skip
        for g in groups
    }


def _addresses(members: list[tuple[str, dict]]) -> list[str]:
    out = []
    for _, vm in members:
        for address in vm.get("addresses") or []:
            ip = ipaddress.ip_interface(address).ip
            out.append(f"{ip}/{ip.max_prefixlen}")
    return list(dict.fromkeys(out))


def ir_rules(group: dict, direction: str, members: dict, first: int) -> list[dict]:
    """A group's rules of one direction in the per-host form, numbered from `first`."""
    out = []
    for i, rule in enumerate(group.get(direction) or []):
        peers: list[str] = []
        for peer in rule.get(PEER_KEY[direction]) or ["any"]:
            if peer == "any":
                peers = ["any"]
                break
            peers += _addresses(members[peer]) if peer in members else [str(_network(peer, ""))]
        out.append({
            "id": f"{group['name']}/{first + i}", "action": rule.get("action") or "allow",
            "family": rule.get("family") or "any", "proto": rule.get("proto") or "any",
            "ports": list(rule.get("ports") or []),
            "icmp_types": list(rule.get("icmp_types") or []),
            "peers": list(dict.fromkeys(peers)), "log": bool(rule.get("log")),
        })  # fmt: skip
    return out


def rules_of(groups: list[dict], members: dict) -> dict[str, dict[str, list[dict]]]:
    """{group: {direction: its rules in the per-host form}}, resolved once for the fleet."""
    out = {}
    for g in groups:
        first = len(g.get("ingress") or [])
        out[g["name"]] = {"ingress": ir_rules(g, "ingress", members, 0),
                          "egress": ir_rules(g, "egress", members, first)}  # fmt: skip
    return out


def host_ports(groups: list[dict], members: dict, host: str, vms: list[dict],
               rules: dict | None = None) -> list[dict]:  # fmt: skip
    """The per-host policy's ports: each VM of `host` in at least one group (`rules`:
    rules_of(), computed here when not given)."""
    rules = rules_of(groups, members) if rules is None else rules
    ports = []
    for vm in vms:
        mine = [g for g in groups if any(h == host and v is vm for h, v in members[g["name"]])]
        if not mine:
            continue
        port = {"mac": vm["mac"].lower(), "groups": [g["name"] for g in mine]}
        if vm.get("port"):
            port["port"] = vm["port"]
        for direction in ("ingress", "egress"):
            port[direction] = [r for g in mine for r in rules[g["name"]][direction]]
            chosen = [g.get("default_" + direction) for g in mine if g.get("default_" + direction)]
            port["default_" + direction] = strictest(chosen) if chosen else DEFAULTS[direction]
        ports.append(port)
    return ports


# what a libvirt hook can see: the domain's XML (name, metadata, NICs and their port
# groups); hosts and vars are decided here, for the host the template is sent to
ATTACH_SELECTORS = {"name", "metadata", "port_group", "macs", "hosts", "vars"}


def templates(groups: list[dict], members: dict, host: str, hosts_of,
              rules: dict | None = None, vars_of=None) -> list[dict]:  # fmt: skip
    """The groups a VM that starts on `host` between runs can join at attach time, with
    their rules resolved: all but those selecting by addresses (a hook knows the
    domain's name, metadata, NICs and port groups, not its guest's addresses)."""
    rules = rules_of(groups, members) if rules is None else rules
    out = []
    for g in groups:
        selector = g["members"]
        if set(selector) - ATTACH_SELECTORS or not _vars_match(selector, host, vars_of):
            continue
        if selector.get("hosts") is not None and host not in hosts_of(selector["hosts"]):
            continue
        names = selector.get("name")
        out.append({
            "group": g["name"],
            "names": None if names is None else [names] if isinstance(names, str) else names,
            "macs": None if selector.get("macs") is None else [m.lower() for m in selector["macs"]],
            "port_group": selector.get("port_group"),
            "metadata": dict(selector.get("metadata") or {}),
            "ingress": rules[g["name"]]["ingress"],
            "egress": rules[g["name"]]["egress"],
            "default_ingress": g.get("default_ingress") or DEFAULTS["ingress"],
            "default_egress": g.get("default_egress") or DEFAULTS["egress"],
        })  # fmt: skip
    return out
