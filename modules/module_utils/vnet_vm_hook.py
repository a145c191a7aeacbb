"""The program of vnetctl's libvirt hook (written by vnet_vm_attach, with the code it runs):
libvirt runs /etc/libvirt/hooks/qemu.d/vnetctl-MODULE with the domain's name and an
operation, the domain's XML on stdin, and waits for it.

    start      (the guest's taps exist and are in their bridges; qemu has not started):
               each NIC on a bridge of the module's dataplane takes the policy of its
               port group, by running the module itself on that one port, as a run
               would; the promiscuous groups of its bridge get their copies of it. A
               failure (or the host lock not free within 60 s) exits 1: libvirt then
               refuses to start the VM (fail closed), saying why.
    reconnect  (libvirtd started again, the guest runs): the same, but a failure is
               only reported (exit 0), since libvirt would kill the running guest.
    release    (the guest is gone, its taps too): what the module keeps for ports that
               no longer exist (nftables elements and chains, OpenFlow rules of gone
               port numbers) is removed, and the domain's port records.

A NIC's group, on the bridge its tap is in: the group named as its libvirt port group
(`<source network=... portgroup='web'/>`), else every group whose `ports` (or guests,
or OVS external_ids) select the tap. A NIC in no group is left as the bridge has it.
The group's declarations are the files the runs wrote (vnet_vm_attach). Each port handled
is recorded in /run/vnetctl/vm-ports/PORT.json: the guest's MAC, the domain, the groups,
when, and how long the hook took.

The hook holds vnetctl's host lock (the flock of /run/lock/vnetctl.lock, exclusively,
as a run that applies does) while it works, so runs and hooks never interleave.

Runs on the managed host: Python 3.9+, standard library only.
"""

import importlib
import os
import sys
import time
import xml.etree.ElementTree as ET

try:  # under ansible-playbook, module_utils files travel with the module
    from ansible.module_utils import vnet_core, vnet_files, vnet_guests, vnet_vm_attach
except ImportError:  # in the hook's code directory, or vnetctl's runner
    import vnet_core
    import vnet_files
    import vnet_guests
    import vnet_vm_attach

LOCK_DIRS = ("/run/lock", "/var/lock", "/tmp")  # as vnetctl's host lock looks for one
LOCK_FILE = "vnetctl.lock"
LOCK_WAIT = 60.0
APPLY = ("start", "reconnect")


class HookError(Exception):
    pass


def nics(xml_text):
    """[{port, mac, bridge, network, portgroup, metadata}] of the domain's interfaces
    that have a tap (a target device); metadata: the domain's, in vnetctl's form
    (vnet_guests, the parser of the status files' reader)."""
    out = []
    metadata = vnet_guests.metadata_in(xml_text)
    for iface in ET.fromstring(xml_text).iter("interface"):
        target, mac = iface.find("target"), iface.find("mac")
        source = iface.find("source")
        source = source.attrib if source is not None else {}
        port = target.get("dev") if target is not None else None
        if port and vnet_core.ifname_problem(port) is None:
            out.append({"port": port, "mac": (mac.get("address") or "").lower()
                        if mac is not None else None, "bridge": source.get("bridge"),
                        "network": source.get("network"),
                        "portgroup": source.get("portgroup"),
                        "metadata": metadata})  # fmt: skip
    return out


def policies(module):
    """The groups' declarations the module's runs wrote, by path under the module's
    directory: BRIDGE/NAME.json, and BRIDGE.NAME.json as vnetctl wrote them before."""
    directory = vnet_vm_attach.POLICIES % module
    out = {}
    for root, _dirs, names in os.walk(directory):
        if root.count("/") > directory.count("/") + 1:
            continue  # deeper than BRIDGE/: not ours
        for name in sorted(n for n in names if n.endswith(".json")):
            path = os.path.join(root, name)
            with open(path) as handle:
                out[os.path.relpath(path, directory)] = vnet_core.loads(handle.read())
    return out


def groups_of(module, declared, nic, bridge, facts):
    """The declarations that apply to a NIC whose tap is on `bridge`."""
    here = [p for p in declared.values() if p.get("bridge") == bridge]
    named = [p for p in here if nic.get("portgroup") and p.get("name") == nic["portgroup"]]
    return named or [p for p in here if module.claims(p, nic["port"], facts)]


def run(host, module, params, facts, what):
    result = host.execute(module, params, False, facts)
    if result.get("failed"):
        raise HookError("%s: %s" % (what, result.get("msg")))
    return result


def apply(host, module, name, domain, found):
    """Each NIC's groups, then the copies for the promiscuous groups of its bridge."""
    declared = policies(name)
    facts = host.Facts.gather(modules=[module])
    for nic in found:
        if nic["mac"]:
            _record(nic["port"], _seen(nic, domain))
    bridges = set()
    for nic in found:
        started = time.monotonic()
        bridge = module.attached_to(nic["port"], facts)
        if bridge is None:
            continue
        bridges.add(bridge)
        mine = groups_of(module, declared, nic, bridge, facts)
        for group in mine:
            what = "port group %s on %s for %s" % (group["name"], bridge, nic["port"])
            run(host, module, module.scoped(group, [nic["port"]], nic["mac"]), facts, what)
        _record(nic["port"], dict(_seen(nic, domain), bridge=bridge,
                                  groups=[g["name"] for g in mine], at=time.time(),
                                  took=round(time.monotonic() - started, 3)))  # fmt: skip
    for group in declared.values():
        if group.get("bridge") in bridges and group.get("promiscuous") == "accept":
            members = module.members_of(group, facts)
            what = "copies to the promiscuous ports of %s" % group["name"]
            run(host, module, module.scoped(group, members, None), facts, what)


def release(host, module, name, domain):
    """The domain's records go; every group forgets what it kept for ports now gone."""
    if os.path.isdir(vnet_vm_attach.RECORDS):
        for entry in sorted(os.listdir(vnet_vm_attach.RECORDS)):
            path = os.path.join(vnet_vm_attach.RECORDS, entry)
            try:
                with open(path) as handle:
                    mine = vnet_core.loads(handle.read()).get("domain") == domain
            except (OSError, ValueError):
                mine = False
            if mine:
                vnet_files.discard(path)
    facts = host.Facts.gather(modules=[module])
    for group in policies(name).values():
        run(host, module, module.scoped(group, [], None), facts, "port group " + group["name"])


def _seen(nic, domain):
    """What a module's claims() reads of a NIC: its MAC, domain, metadata, port group."""
    return {"mac": nic["mac"], "domain": domain, "metadata": nic.get("metadata") or {},
            "port_group": nic.get("portgroup")}  # fmt: skip


def _record(port, data):
    path = os.path.join(vnet_vm_attach.RECORDS, port + ".json")
    vnet_files.replace_files([(path, vnet_core.dumps(data) + "\n")])


def main(name, argv, stdin):
    """The hook's entry: libvirt's arguments (domain, operation, ...), its stdin."""
    if len(argv) < 2 or argv[1] not in APPLY + ("release",):
        return 0
    domain, operation = argv[0], argv[1]
    try:
        xml_text = stdin.read()
        found = nics(xml_text) if operation in APPLY else []
        host = importlib.import_module("vnet_host")
        module = importlib.import_module(name)
        with _locked("libvirt hook: %s %s" % (domain, operation)):
            if operation in APPLY:
                apply(host, module, name, domain, found)
            else:
                release(host, module, name, domain)
    except Exception as exc:  # libvirt shows what the hook printed
        sys.stderr.write("vnetctl %s hook, %s %s: %s\n" % (name, domain, operation, exc))
        return 1 if operation == "start" else 0
    return 0


class _locked:
    """vnetctl's host lock, exclusively (see vnetctl's host_lock), with a holder file
    saying who holds it; HookError after LOCK_WAIT seconds."""

    def __init__(self, owner):
        self.owner, self.fd, self.holder = owner, None, None

    def __enter__(self):
        import fcntl  # noqa: PLC0415 (a C module; only the hook locks)

        directory = next((d for d in LOCK_DIRS if os.path.isdir(d) and os.access(d, os.W_OK)),
                         None)  # fmt: skip
        if directory is None:
            raise HookError("no writable directory for the host lock")
        path = os.path.join(directory, LOCK_FILE)
        self.fd = os.open(path, os.O_RDONLY | (0 if os.path.exists(path) else os.O_CREAT), 0o644)
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(self.fd)
                    raise HookError("vnetctl's host lock is held (a run?) for over %g s"
                                    % LOCK_WAIT) from None  # fmt: skip
                time.sleep(0.05)
        self.holder = os.path.join(directory, "%s.%d.holder" % (LOCK_FILE, os.getpid()))
        info = {"pid": os.getpid(), "mode": "exclusive", "since": time.time(),
                "owner": self.owner}  # fmt: skip
        try:
            vnet_files.write_whole(self.holder, vnet_core.dumps(info))
        except OSError:
            self.holder = None
        return self

    def __exit__(self, *_):
        if self.holder:
            vnet_files.discard(self.holder)
        os.close(self.fd)
