#!/usr/bin/python3
# WANT_JSON
"""The kernel's and Open vSwitch's own answers for one frame, for `vnetctl trace`:
the route to an address (`ip -j route get`), the bridge's forwarding entry for a MAC
(`bridge -j fdb get`), Open vSwitch's walk through a bridge's flows for the frame's
fields (`ovs-appctl ofproto/trace`) and a device's HTB classes with their counters now
(`tc -j -s -d class show`, read again to see whether drops rise). Each lookup's answer
or why there is none; nothing on the host is changed.

The host's state itself (links, addresses, fdb, VLANs, nftables, OVS, tc) is the facts
module's read: the controller asks for these lookups once it knows the frame."""

import ipaddress
import re
import sys

try:  # under ansible-playbook (and Mitogen), module_utils/vnet_host.py travels along
    from ansible.module_utils import vnet_core, vnet_tc
    from ansible.module_utils.vnet_host import HOST_LIBRARY as host
except ImportError:  # vnetctl's runner preloads vnet_host
    import vnet_core
    import vnet_host as host
    import vnet_tc

MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}\Z")
LOOKUP_SPEC = {
    "kind": {"type": "str", "choices": ["route", "fdb", "ofproto", "tc"], "required": True},
    "address": {"type": "str"},  # route: the destination
    "bridge": {"type": "ifname"},  # fdb, ofproto
    "device": {"type": "ifname"},  # tc; ofproto: the input port
    "mac": {"type": "str"},  # fdb: the destination MAC
    "vlan": {"type": "int", "range": [1, 4094]},
    "src_mac": {"type": "str"},  # ofproto: the frame's fields
    "dst_mac": {"type": "str"},
    "src_ip": {"type": "str"},
    "dst_ip": {"type": "str"},
    "proto": {"type": "str", "choices": ["tcp", "udp", "icmp"]},
    "port": {"type": "int", "range": [0, 65535]},
}
ARGUMENT_SPEC = {"lookups": {"type": "list", "elements": "dict", "options": LOOKUP_SPEC,
                             "default": []}}  # fmt: skip
LOOKUP_TIMEOUT_S = 10
PROTO_NUMBERS = {"tcp": 6, "udp": 17, "icmp": 1}


def mac(value, what):
    if value is None or not MAC.match(value):
        raise host.ModuleError("%s: %r is not a MAC address (aa:bb:cc:dd:ee:ff)" % (what, value))
    return value


def address(value, what):
    try:
        return str(ipaddress.ip_address(value))
    except (TypeError, ValueError):
        raise host.ModuleError("%s: %r is not an IP address" % (what, value)) from None


def need(lookup, *keys):
    for key in keys:
        if lookup.get(key) is None:
            raise host.ModuleError("a %s lookup needs %s" % (lookup["kind"], key))


def flow_text(lookup):
    """The frame as ofproto/trace's flow: in_port and the fields given, each validated."""
    fields = ["in_port=%s" % vnet_core.check_ifname(lookup["device"])]
    if lookup.get("vlan") is not None:
        fields.append("dl_vlan=%d" % lookup["vlan"])
    fields.append("dl_src=%s" % mac(lookup.get("src_mac"), "src_mac"))
    fields.append("dl_dst=%s" % mac(lookup.get("dst_mac"), "dst_mac"))
    if lookup.get("src_ip") is not None and lookup.get("dst_ip") is not None:
        src, dst = address(lookup["src_ip"], "src_ip"), address(lookup["dst_ip"], "dst_ip")
        six = ":" in src
        fields.append("dl_type=%s" % ("0x86dd" if six else "0x0800"))
        fields += ["%s=%s" % ("ipv6_src" if six else "nw_src", src),
                   "%s=%s" % ("ipv6_dst" if six else "nw_dst", dst)]  # fmt: skip
        proto = lookup.get("proto")
        if proto is not None:
            fields.append("nw_proto=%d" % PROTO_NUMBERS[proto])
            if proto != "icmp" and lookup.get("port") is not None:
                fields.append("tp_dst=%d" % lookup["port"])
    return ",".join(fields)


def argv_of(lookup):
    kind = lookup["kind"]
    if kind == "route":
        need(lookup, "address")
        return ["ip", "-j", "route", "get", address(lookup["address"], "address")]
    if kind == "fdb":
        need(lookup, "bridge", "mac")
        argv = ["bridge", "-j", "fdb", "get", mac(lookup["mac"], "mac"), "br", lookup["bridge"]]
        return argv + (["vlan", "%d" % lookup["vlan"]] if lookup.get("vlan") else [])
    if kind == "tc":
        need(lookup, "device")
        return ["tc", "-j", "-s", "-d", "class", "show", "dev", lookup["device"]]
    need(lookup, "bridge", "device")
    return ["ovs-appctl", "ofproto/trace", lookup["bridge"], flow_text(lookup)]


def answer(lookup, output):
    if lookup["kind"] in ("route", "fdb"):
        return vnet_core.loads(output) if output.strip() else []
    if lookup["kind"] == "tc":
        return vnet_tc.parse_classes(output)
    return output


def run_lookup(lookup, runner):
    try:
        argv = argv_of(lookup)
    except host.ModuleError as exc:
        return {"kind": lookup["kind"], "error": str(exc)}
    try:
        code, out, err = runner(argv, None, LOOKUP_TIMEOUT_S)
    except host.ModuleError as exc:  # not installed (no OVS), or no answer in time
        return {"kind": lookup["kind"], "error": str(exc)}
    if code != 0:  # `fdb get` of an unknown MAC, no route: the answer is "none"
        return {"kind": lookup["kind"], "error": (err or out).strip() or "exit %d" % code}
    try:
        return {"kind": lookup["kind"], "answer": answer(lookup, out)}
    except ValueError as exc:
        return {"kind": lookup["kind"], "error": "unreadable answer: %s" % exc}


def run(params, check, facts, runner=None):
    runner = runner or vnet_core.run_status
    found = [run_lookup(lookup, runner) for lookup in params.get("lookups") or []]
    return {"changed": False, "failed": False, "msg": "%d lookups" % len(found),
            "lookups": found}  # fmt: skip


if __name__ == "__main__":
    host.ansible_main(sys.modules[__name__])
