#!/usr/bin/python3
# WANT_JSON
"""Overlay health probe, used by `vnetctl mesh check` in three fleet-wide phases.

setup:    per segment, a throwaway network namespace `vnetctl-probe-VNI` with a veth
          into the segment's bridge, at the segment's MTU, with a link-local address;
          a VLAN segment (`vlan`: a port group's VLAN on an OVS bridge) is
          `vnetctl-probe-vlanN`, its veth an access port of that VLAN;
ping:     from each probe to every other member's probe, with don't-fragment at the
          segment's full MTU and at a small size, all pings at once (bounded: `count`
          pings of each, 1..20, 0.2 s apart); per pair the verdict, the small pings'
          loss (0..1) and their mean round trip (`vnetctl stats --probe` exports both);
teardown: the namespaces go, and their veths with them.

Nothing else on the host is touched; a probe left by an interrupted check is replaced.
"""

import subprocess
import sys
import time

try:  # under ansible-playbook (and Mitogen), module_utils/vnet_host.py travels along
    from ansible.module_utils import vnet_ovs_portsec as portsec
    from ansible.module_utils.vnet_host import HOST_LIBRARY as host
except ImportError:  # vnetctl's runner preloads vnet_host
    import vnet_host as host
    import vnet_ovs_portsec as portsec

SEGMENT_SPEC = {
    "vni": {"type": "int", "range": [1, 16777215]},  # a VXLAN segment, or
    "vlan": {"type": "int", "range": [1, 4094]},  # a VLAN on an OVS bridge
    "bridge": {"type": "ifname", "required": True},
    "mtu": {"type": "int", "required": True, "range": [68, 65535]},
    "address": {"type": "str", "required": True},
}
TARGET_SPEC = {
    "host": {"type": "str", "required": True},
    "vni": {"type": "int", "range": [1, 16777215]},
    "vlan": {"type": "int", "range": [1, 4094]},
    "address": {"type": "str", "required": True},
    "mtu": {"type": "int", "required": True, "range": [68, 65535]},
}
ARGUMENT_SPEC = {
    "action": {"type": "str", "choices": ["setup", "ping", "teardown"], "required": True},
    "segments": {"type": "list", "elements": "dict", "options": SEGMENT_SPEC},
    "targets": {"type": "list", "elements": "dict", "options": TARGET_SPEC},
    "count": {"type": "int", "range": [1, 20], "default": 2},  # pings per size and target
}

PARALLEL_PINGS = 64
PING_TIMEOUT_S = 2
SMALL = 56  # ICMP payload of a default ping
IP_ICMP_HEADERS = 28


def _key(seg):
    """The name part of a segment's probe: the VNI ("100"; a segment, or the VNI alone),
    or "vlan10" for VLAN 10, so the two never collide."""
    if isinstance(seg, int):
        return "%d" % seg
    return "vlan%d" % seg["vlan"] if seg.get("vlan") else "%d" % seg["vni"]


def namespace(seg):
    return "vnetctl-probe-" + _key(seg)


def run(params, check, facts):
    action = params["action"]
    if action == "ping":
        return {
            "changed": False,
            "failed": False,
            "msg": "ok",
            "pairs": ping_all(params.get("targets") or [], params.get("count") or 2),
        }
    segments = params.get("segments") or []
    existing = set(host.run(["ip", "netns", "list"]).split())
    for seg in segments:  # teardown, or what an interrupted check left behind
        if _on_ovs(seg, facts):
            if outside_name(seg) in facts.ovs["bridges"][seg["bridge"]]:
                gate = portsec.delete_port_rules(seg["bridge"], portsec.GATE, outside_name(seg))
                host.apply_steps([host.step("ovs-ofctl", *gate.split(" "))])
            host.apply_steps([host.step("ovs-vsctl", "--if-exists", "del-port", outside_name(seg))])
        # the veth first: a deleted namespace frees its links asynchronously
        if facts.link(outside_name(seg)) is not None:
            host.run(["ip", "link", "del", "dev", outside_name(seg)])
        if namespace(seg) in existing:
            host.run(["ip", "netns", "del", namespace(seg)])
    if action == "setup":
        for seg in segments:
            _setup(seg, _on_ovs(seg, facts))
    return {"changed": True, "failed": False, "msg": "%s done" % action}


def outside_name(seg):
    return "vnp" + _key(seg)


def _on_ovs(seg, facts):
    return bool(facts.ovs) and seg["bridge"] in facts.ovs["bridges"]


def _setup(seg, on_ovs):
    ns, key = namespace(seg), _key(seg)
    outside, inside = outside_name(seg), "vnq" + key
    # names fit in 15 bytes: "vnp" + a VNI of at most 8 digits, or "vlan" and 4 digits
    host.run(["ip", "netns", "add", ns])
    veth = ["link", "add", outside, "mtu", seg["mtu"], "type", "veth", "peer", "name", inside]
    if seg.get("vlan") and not on_ovs:
        raise host.ModuleError(
            "VLAN %d: %s is not an Open vSwitch bridge" % (seg["vlan"], seg["bridge"])
        )
    if on_ovs and seg.get("vlan"):  # an access port of the VLAN
        attach = host.step("ovs-vsctl", "add-port", seg["bridge"], outside, "tag=%d" % seg["vlan"])
    elif on_ovs:
        attach = host.step("ovs-vsctl", "add-port", seg["bridge"], outside)
    else:
        attach = host.step("ip", "link", "set", "dev", outside, "master", seg["bridge"])
    up = host.step("ip", "link", "set", "dev", outside, "up")
    steps = [host.step("ip", *veth, "netns", ns), attach, up]
    if on_ovs:  # through the gate of a bridge with port security (vnet_ovs_portsec)
        allow = portsec.flow(portsec.GATE, outside, portsec.GATE_ALLOW_TEXT)
        steps.append(host.step("ovs-ofctl", seg["bridge"], "add", allow))
    host.apply_steps(steps)
    inside_setup = [
        host.line("link", "set", "dev", "lo", "up"),
        host.line("link", "set", "dev", inside, "mtu", seg["mtu"], "up"),
        host.line("addr", "add", "%s/16" % seg["address"], "dev", inside),
    ]
    host.run_batch(["ip", "-n", ns, "-batch", "-"], inside_setup)


def ping_all(targets, count=2):
    """Every target at two sizes, PARALLEL_PINGS at a time, `count` pings each; a verdict
    per target."""
    jobs = []
    for target in targets:
        for size in (SMALL, target["mtu"] - IP_ICMP_HEADERS):
            argv = ["ip", "netns", "exec", namespace(target), "ping", "-n", "-q",
                    "-c", str(count), "-i", "0.2", "-W", str(PING_TIMEOUT_S), "-M", "do",
                    "-s", str(size), target["address"]]  # fmt: skip
            jobs.append((target, size, argv))
    outcome = {}
    for start in range(0, len(jobs), PARALLEL_PINGS):
        batch = [
            (
                t,
                size,
                subprocess.Popen(
                    argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, universal_newlines=True
                ),
            )  # fmt: skip
            for t, size, argv in jobs[start : start + PARALLEL_PINGS]
        ]
        deadline = time.monotonic() + PING_TIMEOUT_S * 3 + count * 0.2
        for target, size, proc in batch:
            try:
                out = proc.communicate(timeout=max(0.1, deadline - time.monotonic()))[0]
            except subprocess.TimeoutExpired:
                proc.kill()
                out = proc.communicate()[0]
            outcome[(target["host"], _key(target), size == SMALL)] = (proc.returncode == 0, out)
    return [
        _verdict(t, outcome[(t["host"], _key(t), True)], outcome[(t["host"], _key(t), False)])
        for t in targets
    ]


def ping_summary(out):
    """(loss 0..1, mean round trip in ms or None) from `ping -q`'s summary; all lost where
    ping printed none (killed, or no namespace)."""
    loss, rtt = 1.0, None
    for line in (out or "").splitlines():
        words = line.replace(",", " ").split()
        if "transmitted" in words and "received" in words:
            sent, got = int(words[0]), int(words[words.index("received") - 1])
            loss = (sent - got) / sent if sent else 1.0
        elif line.startswith(("rtt ", "round-trip ")) and "=" in line:
            rtt = float(line.split("=")[1].split("/")[1])
    return loss, rtt


def _verdict(target, small, full):
    (small_ok, out), (full_ok, _) = small, full
    if small_ok and full_ok:
        state = "reachable"
    elif small_ok:
        state = "mtu-broken"
    else:
        state = "unreachable"
    loss, rtt = ping_summary(out)
    found = {"host": target["host"], "state": state, "mtu": target["mtu"], "loss": loss,
             "rtt_ms": rtt}  # fmt: skip
    found.update({k: target[k] for k in ("vni", "vlan") if target.get(k)})
    return found


if __name__ == "__main__":
    host.ansible_main(sys.modules[__name__])
