"""Filters and lookups operators use in network playbooks, for the templar's sandbox:
address math as Ansible's ansible.utils has it (`ipaddr`, `ipv4`, `ipv6`, `ipmath`,
`ipsubnet`, `nthhost`, `ipwrap`, `network_in_usable`, `network_in_network`), with the
standard library's ipaddress; `dict2items` / `items2dict`; `mandatory`; and the lookups
`file` (relative to the playbook, inside its directory unless written absolute, at most
1 MiB, text) and `env`.

As in ansible.utils, a value that is no address is not an error for `ipaddr` and its
kin: it gives False (a list keeps only its valid items), so `x | ipaddr` tests a value;
a query that does not apply to a valid one (the `address` of a network) gives None; an
unknown query, a bad prefix or index is an error (bad input, with the template).
tests/unit/test_filters.py holds the answers ansible.utils 6 (netaddr) gave.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jinja2 import Undefined, pass_context

MAX_FILE = 1024 * 1024  # lookup('file'): bytes


class FilterError(Exception):
    """A filter refused its input: the template's error."""


def _interface(value: Any) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        value = str(ipaddress.ip_address(value)) if value >= 0 else ""
    try:
        return ipaddress.ip_interface(str(value).strip())
    except ValueError:
        return None


def _usable(net) -> tuple[Any, Any]:
    if net.prefixlen >= net.max_prefixlen - 1:
        return net[0], net[-1]
    return net[1], net[-2]


def _query(iface, query: Any, original: Any) -> Any:
    net, ip = iface.network, iface.ip
    # as netaddr writes it: '192.168.1.5/255.255.255.0' is 192.168.1.5/24, an int an address
    shown = str(iface) if "/" in str(original) else str(ip)
    host_part = net.prefixlen < net.max_prefixlen and ip == net.network_address
    if isinstance(query, int) or (isinstance(query, str) and query.lstrip("-").isdigit()):
        index = int(query)
        try:
            return f"{net[index]}/{net.prefixlen}"
        except IndexError:
            return False
    answers = {
        "": lambda: shown,
        "address": lambda: None if host_part else str(ip),
        "ip": lambda: str(ip),
        "host": lambda: (
            None
            if host_part
            else f"{ip}/{net.max_prefixlen}"
            if net.prefixlen == net.max_prefixlen
            else str(iface)
        ),
        "host/prefix": lambda: (
            None if host_part or net.prefixlen == net.max_prefixlen else str(iface)
        ),
        "address/prefix": lambda: (
            None if host_part or net.prefixlen == net.max_prefixlen else str(iface)
        ),
        "net": lambda: str(net) if host_part else None,
        "network": lambda: str(net.network_address),
        "subnet": lambda: str(net),
        "cidr": lambda: str(net),
        "network/prefix": lambda: str(net),
        "prefix": lambda: net.prefixlen,
        "netmask": lambda: str(net.netmask),
        "hostmask": lambda: str(net.hostmask),
        "broadcast": lambda: str(net.broadcast_address),
        "size": lambda: net.num_addresses,
        "version": lambda: net.version,
        "private": lambda: shown if ip.is_private else None,
        "public": lambda: shown if ip.is_global else None,
        "first_usable": lambda: str(_usable(net)[0]),
        "last_usable": lambda: str(_usable(net)[1]),
        "range_usable": lambda: "{}-{}".format(*_usable(net)),
        "revdns": lambda: ip.reverse_pointer + ".",
        "wrap": lambda: ipwrap(str(original).strip()),
        "bool": lambda: True,
    }
    if query not in answers:
        raise FilterError(f"ipaddr: unknown query {query!r} (known: {', '.join(sorted(answers))})")
    return answers[query]()


def ipaddr(value: Any, query: Any = "", version: int | None = None) -> Any:
    if isinstance(value, list | tuple):
        found = [ipaddr(item, query, version) for item in value]
        return [item for item in found if item is not False and item is not None]
    iface = _interface(value)
    if iface is None or (version is not None and iface.version != version):
        return False
    return _query(iface, query, value)


def ipv4(value: Any, query: Any = "") -> Any:
    return ipaddr(value, query, version=4)


def ipv6(value: Any, query: Any = "") -> Any:
    return ipaddr(value, query, version=6)


def ipwrap(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [ipwrap(item) for item in value]
    iface = _interface(value)
    if iface is None or iface.version == 4:
        return value
    text = str(value).strip()
    return f"[{iface.ip}]" if "/" not in text else f"[{iface.ip}]/{iface.network.prefixlen}"


def ipmath(value: Any, amount: int) -> str:
    iface = _interface(value)
    if iface is None:
        raise FilterError(f"ipmath: {value!r} is not an IP address")
    try:
        return str(iface.ip + int(amount))
    except (ValueError, ipaddress.AddressValueError) as exc:
        raise FilterError(f"ipmath: {value} + {amount}: {exc}") from None


def ipsubnet(value: Any, query: Any = "", index: Any = None) -> Any:
    iface = _interface(value)
    if iface is None:
        return False
    net = iface.network
    if query in ("", None):
        return str(net)
    try:
        prefix = int(query)
    except (TypeError, ValueError):
        raise FilterError(f"ipsubnet: the prefix must be a number, got {query!r}") from None
    if not net.prefixlen <= prefix <= net.max_prefixlen:
        if "/" not in str(value) and 0 <= prefix <= net.max_prefixlen:  # an address's subnet
            return str(ipaddress.ip_interface(f"{iface.ip}/{prefix}").network)
        raise FilterError(f"ipsubnet: requested subnet size of {prefix} is invalid")
    if "/" not in str(value) or net.prefixlen == net.max_prefixlen:
        return str(ipaddress.ip_interface(f"{iface.ip}/{prefix}").network)
    count = 2 ** (prefix - net.prefixlen)
    if index is None:
        return str(count)
    index = int(index)
    if not -count <= index < count:
        return False
    size = 2 ** (net.max_prefixlen - prefix)
    start = net.network_address + (index % count) * size
    return f"{start}/{prefix}"


def nthhost(value: Any, query: int) -> Any:
    iface = _interface(value)
    if iface is None:
        return False
    try:
        return str(iface.network[int(query)])
    except IndexError:
        return False


def network_in_usable(value: Any, test: Any) -> bool:
    outer, inner = _interface(value), _interface(test)
    if outer is None or inner is None:
        raise FilterError(f"network_in_usable: {value!r}, {test!r}: not addresses")
    first, last = _usable(outer.network)
    return all(first <= ip <= last for ip in (inner.network[0], inner.network[-1]))


def network_in_network(value: Any, test: Any) -> bool:
    outer, inner = _interface(value), _interface(test)
    if outer is None or inner is None:
        raise FilterError(f"network_in_network: {value!r}, {test!r}: not addresses")
    return inner.version == outer.version and inner.network.subnet_of(outer.network)


def dict2items(value: Any, key_name: str = "key", value_name: str = "value") -> list[dict]:
    if not isinstance(value, Mapping):
        raise FilterError(f"dict2items requires a dictionary, got {type(value).__name__}")
    return [{key_name: k, value_name: v} for k, v in value.items()]


def items2dict(value: Any, key_name: str = "key", value_name: str = "value") -> dict:
    if not isinstance(value, list | tuple):
        raise FilterError(f"items2dict requires a list, got {type(value).__name__}")
    out = {}
    for item in value:
        if not isinstance(item, Mapping) or key_name not in item or value_name not in item:
            raise FilterError(f"items2dict: each item needs '{key_name}' and '{value_name}', "
                              f"got {item!r}")  # fmt: skip
        out[item[key_name]] = item[value_name]
    return out


def mandatory(value: Any, msg: str | None = None) -> Any:
    if isinstance(value, Undefined):
        name = getattr(value, "_undefined_name", None)
        raise FilterError(msg or f"Mandatory variable '{name}' not defined.")
    return value


def _file(context: Any, name: str) -> str:
    base = Path(str(context.get("role_path") or context.get("playbook_dir") or "."))
    path = Path(name).expanduser()
    if not path.is_absolute():
        path = base / "files" / path if (base / "files" / path).is_file() else base / path
        if not path.resolve().is_relative_to(base.resolve()):
            raise FilterError(
                f"lookup('file'): {name} leads outside {base}: keep the file "
                "under the playbook's directory, or write its absolute path"
            )
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_FILE + 1)
    except OSError as exc:
        raise FilterError(f"lookup('file'): {name}: {exc.strerror}") from None
    if len(data) > MAX_FILE:
        raise FilterError(f"lookup('file'): {name} is larger than {MAX_FILE // 1024} KiB")
    try:
        return data.decode().rstrip("\n")
    except UnicodeDecodeError:
        raise FilterError(f"lookup('file'): {name} is not UTF-8 text") from None


LOOKUPS = {
    "file": _file,
    "env": lambda context, name: os.environ.get(str(name), ""),
}


def _lookups(context: Any, plugin: str, terms: tuple, wantlist: bool) -> Any:
    if plugin not in LOOKUPS:
        raise FilterError(f"lookup: {plugin!r} is not supported (vnetctl has "
                          f"{', '.join(sorted(LOOKUPS))})")  # fmt: skip
    values = [LOOKUPS[plugin](context, str(term)) for term in terms]
    return values if wantlist else ",".join(values)


@pass_context
def lookup(context: Any, plugin: str, *terms: Any, wantlist: bool = False, **_: Any) -> Any:
    return _lookups(context, plugin, terms, wantlist)


@pass_context
def query(context: Any, plugin: str, *terms: Any, **_: Any) -> list:
    return _lookups(context, plugin, terms, True)


FILTERS = {
    "ipaddr": ipaddr, "ipv4": ipv4, "ipv6": ipv6, "ipmath": ipmath, "ipsubnet": ipsubnet,
    "ipwrap": ipwrap, "nthhost": nthhost, "network_in_usable": network_in_usable,
    "network_in_network": network_in_network, "dict2items": dict2items,
    "items2dict": items2dict, "mandatory": mandatory,
}  # fmt: skip
GLOBALS = {"lookup": lookup, "query": query, "q": query}
