"""A libvirt domain's NIC as a trace endpoint: `DOMAIN[:NIC]`, found in what the hosts'
facts say of the domains libvirt runs (vnet_hostnet's libvirt_nics: its status files).
NIC is the NIC's index (0 first, as `virsh domiflist` lists them), its MAC, its host
device (target dev) or libvirt's alias (net0, ua-...); without it, the domain's only NIC.
Nothing here reaches a host: the NIC's device, a name the host's own facts hold, is what
the trace looks up."""

from __future__ import annotations

import re
from typing import Any

from vnetctl.errors import InputError
from vnetctl.trace.hostview import HostView, lib

MAC = re.compile(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}\Z")
ALIAS = re.compile(r"[A-Za-z0-9_.-]{1,64}\Z")
NAME_MAX = 200


def name_problem(name: str) -> str | None:
    """Why `name` cannot be a libvirt domain's name here, or None. libvirt refuses '/'
    and newlines; stricter: no control character, no ':' (it ends the name in a token),
    not empty, at most NAME_MAX characters."""
    if not name:
        return "it is empty"
    if len(name) > NAME_MAX:
        return f"it is longer than {NAME_MAX} characters"
    if "/" in name or ":" in name:
        return "it contains '/' or ':'"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "it contains a control character"
    return None


def nic_problem(nic: str) -> str | None:
    """Why `nic` names no NIC (an index, a MAC, a device or an alias), or None."""
    if MAC.match(nic) or ALIAS.match(nic) or lib("vnet_core").ifname_problem(nic) is None:
        return None
    return "it is no index, MAC, device name or libvirt alias"


def parse(value: str, token: str) -> tuple[str, str | None]:
    """(domain, NIC or None) of `DOMAIN[:NIC]`, refused unless well formed."""
    name, sep, nic = value.partition(":")
    problem = name_problem(name)
    if problem:
        raise InputError(f"{token!r}: {name!r} is no libvirt domain name: {problem}")
    if not sep:
        return name, None
    problem = nic_problem(nic)
    if problem:
        raise InputError(f"{token!r}: {nic!r} names no NIC of {name}: {problem}")
    return name, nic.lower() if MAC.match(nic) else nic


def label(nic: dict[str, Any]) -> str:
    parts = [str(nic["index"])] + [nic[k] for k in ("alias", "dev", "mac") if nic.get(k)]
    return " ".join(parts)


def nics_of(view: HostView, domain: str) -> list[dict[str, Any]]:
    return [n for n in view.net.libvirt_nics() if n["domain"] == domain]


def hosts_running(views: dict[str, HostView], domain: str) -> list[str]:
    return sorted(h for h, v in views.items() if nics_of(v, domain))


def select(view: HostView, domain: str, nic: str | None, token: str) -> dict[str, Any]:
    """The NIC of `domain` on this host that `nic` names; its only one without `nic`."""
    nics = nics_of(view, domain)
    listed = "; ".join(f"{domain}:{n['index']} ({label(n)})" for n in nics)
    if nic is None:
        if len(nics) != 1:
            raise InputError(f"{token}: domain {domain} has {len(nics)} NICs on "
                             f"{view.name}, say which: {listed}")  # fmt: skip
        return nics[0]
    chosen = [n for n in nics if nic in (str(n["index"]), n["mac"], n["dev"], n["alias"])]
    if len(chosen) != 1:
        what = "no NIC" if not chosen else "more than one NIC"
        raise InputError(f"{token}: {nic} is {what} of domain {domain} on {view.name}: "
                         f"{listed}")  # fmt: skip
    if not chosen[0]["dev"]:
        raise InputError(f"{token}: libvirt names no host device for {domain}'s NIC "
                         f"{label(chosen[0])} (hostdev?): trace its MAC")  # fmt: skip
    return chosen[0]


def describe(nic: dict[str, Any]) -> dict[str, Any]:
    """The endpoint's `domain` in the trace's document."""
    return {"name": nic["domain"], "nic": nic["index"], "alias": nic.get("alias")}
