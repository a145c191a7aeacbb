#!/usr/bin/python3
# WANT_JSON
"""Active path probe, used by `vnetctl trace --probe` in three fleet-wide phases.

watch:    on every host of the path, a detached watcher reads the path's devices here
          (AF_PACKET, both directions, no BPF: the probe's marker is matched in each
          frame, VXLAN-encapsulated copies on the underlay included) for at most
          `timeout` s; the phase ends once every socket is bound (vnet_probe_watch);
inject:   on the source host, `count` marked frames (vnet_probe_frames) written into the
          VM's side of the source port, as if the VM sent them: a veth whose other end
          is here or in a named network namespace (a lab VM, a container); or a tap (a
          libvirt/qemu VM), whose receive path the frames enter through a veth pair of
          the probe's own and a tc mirred redirect (vnet_probe_tap), removed afterwards;
collect:  the watchers stop (after a short grace for frames in flight) and say, per
          device, how many of the frames they saw and in which direction.

Nothing on the host is changed but the watcher's state under /run/vnetctl/path-probe and,
for a tap, the probe's veth pair while it sends: both removed by collect (the pair as
soon as the frames are sent, or by the watcher at its end), or by a later probe once
they are stale. The frames go where the VM's
own traffic would: the destination may answer them (a SYN, a UDP datagram, an echo).
"""

import json
import sys

try:  # under ansible-playbook (and Mitogen), module_utils travel along
    from ansible.module_utils import vnet_probe_frames as frames
    from ansible.module_utils import vnet_probe_tap as tap
    from ansible.module_utils import vnet_probe_watch as watch
    from ansible.module_utils.vnet_host import HOST_LIBRARY as host
except ImportError:  # vnetctl's runner preloads vnet_host
    import vnet_host as host
    import vnet_probe_frames as frames
    import vnet_probe_tap as tap
    import vnet_probe_watch as watch

PACKET_SPEC = {
    "proto": {"type": "str", "choices": ["tcp", "udp", "icmp"], "default": "udp"},
    "port": {"type": "int", "range": [1, 65535]},
    "size": {"type": "int", "range": [64, 65535]},
    "src_mac": {"type": "str", "required": True},
    "dst_mac": {"type": "str", "required": True},
    "src_ip": {"type": "str"},
    "dst_ip": {"type": "str"},
    "vlan": {"type": "int", "range": [1, 4094]},
}
ARGUMENT_SPEC = {
    "action": {"type": "str", "choices": ["watch", "inject", "collect"], "required": True},
    "marker": {"type": "str", "required": True},
    "devices": {"type": "list", "elements": "ifname"},  # watch
    "count": {"type": "int", "range": [1, 20], "default": 3},
    "timeout": {"type": "float", "range": [0.5, 60], "default": 5.0},  # watch
    "port": {"type": "ifname"},  # inject: the source port (its host side)
    "packet": {"type": "dict", "options": PACKET_SPEC},  # inject
}

SEND = (
    "import socket,sys\n"
    "s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)\n"
    "s.bind((sys.argv[1],0))\n"
    "for h in sys.stdin.read().split():\n"
    "    s.send(bytes.fromhex(h))\n"
)


def run(params, check, facts):
    problem = frames.marker_problem(params["marker"])
    if problem:
        raise host.ModuleError(problem)
    action = params["action"]
    try:
        if action == "watch":
            devices = list(dict.fromkeys(params.get("devices") or []))
            present = [d for d in devices if facts.link(d) is not None]
            found = watch.start(params["marker"], present, params["count"], params["timeout"])
            for dev in devices:
                if dev not in present:
                    found["not_watched"][dev] = "no such device on this host"
            return _done("watching %d device(s)" % len(found["watched"]), **found)
        if action == "collect":
            return _done("collected", **watch.collect(params["marker"]))
    except OSError as exc:
        raise host.ModuleError("%s: %s" % (action, exc)) from None
    try:  # said, not failed: the collect play still runs here and stops the watcher
        return inject(params, facts)
    except (host.ModuleError, OSError) as exc:
        return _done("not injected: %s" % exc, error=str(exc))


def _done(msg, **data):
    return dict(changed=False, failed=False, msg=msg, **data)


def inject(params, facts):
    port, packet = params.get("port"), params.get("packet") or {}
    if not port or not packet:
        raise host.ModuleError("inject needs the source port and the packet")
    problem = frames.problem(packet)
    if problem:
        raise host.ModuleError("packet: %s" % problem)
    sent = frames.frames(packet, params["marker"], params["count"])
    link = facts.link(port)
    if link is not None and (link.get("linkinfo") or {}).get("info_kind") == "tun":
        return inject_tap(params["marker"], port, link, packet["src_mac"], sent)
    namespace, guest = vm_side(port, facts)
    _check_fits(sent, _guest_mtu(namespace, guest), "the VM's side of %s" % port)
    if namespace is None:
        frames.send(guest, sent)
    else:
        argv = ["ip", "netns", "exec", namespace, sys.executable, "-c", SEND, guest]
        host.run(argv, stdin="\n".join(f.hex() for f in sent) + "\n")
    where = guest if namespace is None else "%s in namespace %s" % (guest, namespace)
    return _done("%d frame(s) sent from %s" % (len(sent), where), sent=len(sent),
                 injected_at={"device": guest, "namespace": namespace, "port": port},
                 frame_bytes=len(sent[0]))  # fmt: skip


def inject_tap(marker, port, link, src_mac, sent):
    problem = tap.tap_problem(link)
    if problem:
        raise host.ModuleError("%s: %s" % (port, problem))
    _check_fits(sent, link["mtu"], port)
    if not watch.watching(marker):  # it removes the pair should this process be killed
        raise host.ModuleError("no watch of this probe runs here (never started, or ended at "
                               "its time bound): nothing to send into %s for" % port)  # fmt: skip
    sender = tap.send(watch.state_dir(marker), marker, port, link["mtu"], src_mac, sent)
    return _done("%d frame(s) sent into the receive path of %s (through %s, removed)"
                 % (len(sent), port, sender), sent=len(sent), frame_bytes=len(sent[0]),
                 injected_at={"device": sender, "namespace": None, "port": port,
                              "via": "tc mirred ingress redirect"})  # fmt: skip


def _check_fits(sent, mtu, where):
    if mtu is not None and len(sent[0]) - 14 > mtu:
        raise host.ModuleError("the probe's packet (%d bytes) is larger than the MTU of %s (%d)"
                               % (len(sent[0]) - 14, where, mtu))  # fmt: skip


def vm_side(port, facts):
    """(namespace or None, device): the VM's end of `port`, a veth: its peer, here or in
    a named namespace; anything else (a tap has its own path) is refused, saying why."""
    link = facts.link(port)
    if link is None:
        raise host.ModuleError("no port %s on this host" % port)
    kind = (link.get("linkinfo") or {}).get("info_kind")
    if kind == "veth" and link.get("link") and "link_netnsid" not in link:
        return None, host.check_ifname(link["link"])  # iproute2 names a peer it can see
    if kind != "veth" or "link_index" not in link:
        raise host.ModuleError("%s is not a veth whose other end could be found (%s): nothing "
                               "to send from as the VM" % (port, kind or "no kind"))  # fmt: skip
    peer_index = link["link_index"]
    if "link_netnsid" not in link:
        peer = next((lk for lk in facts.links.values() if lk.get("ifindex") == peer_index), None)
        if peer is None:
            raise host.ModuleError("the other end of %s is not on this host" % port)
        return None, host.check_ifname(peer["ifname"])
    for ns in _namespaces():
        if ns.get("id") != link["link_netnsid"]:
            continue
        name = ns.get("name")
        if host.name_problem("objname", name):
            raise host.ModuleError("namespace %r: not a name to run a command in" % name)
        for peer in json.loads(host.run(["ip", "-n", name, "-j", "link", "show"]) or "[]"):
            if peer.get("ifindex") == peer_index:
                return name, host.check_ifname(peer["ifname"])
    raise host.ModuleError("the other end of %s is in a namespace with no name (a VM's or a "
                           "container runtime's): nothing to send from" % port)  # fmt: skip


def _namespaces():
    return json.loads(host.run(["ip", "-j", "netns", "list"]) or "[]")


def _guest_mtu(namespace, device):
    argv = ["ip", "-j", "link", "show", "dev", device]
    if namespace is not None:
        argv[1:1] = ["-n", namespace]
    try:
        return json.loads(host.run(argv))[0].get("mtu")
    except (host.ModuleError, ValueError, IndexError):
        return None


if __name__ == "__main__":
    host.ansible_main(sys.modules[__name__])
