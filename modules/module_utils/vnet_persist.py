"""Boot persistence: what a task applies is also written as the host's boot configuration,
systemd-networkd units, so a reboot brings it back (README, "Boot persistence").

A module renders its units with the optional hook `persist(params, desired, facts,
units)`: `units` (Units, below) collects them: `netdev(name, ...)` a device networkd
makes, `network(dev, ...)` settings of a device's .network (a drop-in: several tasks may
configure one device), `link(dev, ...)` a udev .link file (an interface alias), and
`boot(devices, lines)` tc lines networkd cannot express, which the oneshot unit
vnetctl-reapply.service feeds to `tc -batch` at boot, once the devices exist. One
writer (`settle`) compares them with the files on disk, writes what changed (temporary
file, then rename), removes the files the task's resource wrote earlier and no longer
renders, and says what it did or, in check mode, would do (each file's content before
and after: the controller shows the diff, drift reports `not persisted`).

Every file vnetctl writes starts with "# vnetctl owner: RESOURCE" and its name with
"10-vnetctl-": vnetctl touches no other file. A device that networkd already configures
from a file of someone else's that matches exactly that device (`[Match] Name=DEV`)
gets vnetctl's settings as a drop-in of that file; any other device gets a file of its
own, `10-vnetctl-DEV.network`, whose settings are drop-ins from every task that
configures it (removed with the last of them).

Settings (vnetctl sends them per play): mode networkd | none | auto (networkd where the
host booted with systemd and systemd-networkd is enabled or running, else none), and
root (default "/"; the lab writes under a directory of its own).

Runs on the managed host: Python 3.9+, standard library only.
"""

import os

try:  # under ansible-playbook, module_utils files travel with the module
    from ansible.module_utils import vnet_fib
except ImportError:  # vnetctl's runner preloads every module_utils file
    import vnet_fib

PREFIX = "10-vnetctl-"
OWNER = "# vnetctl owner: "
BASE = "# vnetctl: the base of "
NETWORK_DIR = "etc/systemd/network"
BOOT_DIR = "etc/vnetctl/boot.d"
UNIT_NAME = "vnetctl-reapply.service"
UNIT_PATH = "etc/systemd/system/" + UNIT_NAME
WANTS_PATH = "etc/systemd/system/multi-user.target.wants/" + UNIT_NAME
NETWORKD_ENABLED = "etc/systemd/system/multi-user.target.wants/systemd-networkd.service"
NETWORKD_STATE = "run/systemd/netif/state"  # written by a running systemd-networkd
# The oneshot: after networkd, each file's tc lines once its devices exist (networkd
# makes devices asynchronously: up to 30 s each), every file even if one fails ($$: a
# dollar sign systemd does not expand).
UNIT = """# vnetctl: re-applies at boot what systemd-networkd cannot express (tc filters,
# ingress redirects): the files in /etc/vnetctl/boot.d, one per vnetctl task
[Unit]
Description=vnetctl: re-apply tc configuration systemd-networkd cannot express
Wants=systemd-networkd.service
After=systemd-networkd.service
ConditionDirectoryNotEmpty=/etc/vnetctl/boot.d

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'rc=0; for f in /etc/vnetctl/boot.d/*.tc; do \\
    for dev in $$(sed -n "s/^# device: //p" "$$f"); do n=0; \\
        while [ ! -e "/sys/class/net/$$dev" ] && [ $$n -lt 30 ]; do sleep 1; n=$$((n+1)); done; \\
    done; tc -batch "$$f" || rc=1; done; exit $$rc'

[Install]
WantedBy=multi-user.target
"""


def configure(raw):
    """The play's settings ({"mode", "root"}) with the mode decided: (settings, why)."""
    raw = raw or {}
    root = raw.get("root") or "/"
    mode = raw.get("mode") or "auto"
    if mode != "auto":
        return {"mode": mode, "root": root}, "declared"
    booted = os.path.isdir(os.path.join(root, "run/systemd/system"))
    enabled = os.path.lexists(os.path.join(root, NETWORKD_ENABLED))
    if booted and enabled:
        return {"mode": "networkd", "root": root}, "systemd-networkd is enabled here"
    if booted and os.path.isfile(os.path.join(root, NETWORKD_STATE)):
        return {"mode": "networkd", "root": root}, "systemd-networkd runs here"
    why = "systemd-networkd is not enabled here" if booted else "the host did not boot systemd"
    return {"mode": "none", "root": root}, why


def unit_text(header, sections):
    """A unit file: a comment line, then [Section] and key=value lines; a value that is a
    list gives the key once per item; None leaves the key out (and a section of nothing
    but None, the section)."""
    out = [header]
    for name, pairs in sections:
        lines = [
            "%s=%s" % (key, _word(item))
            for key, value in pairs
            for item in (value if isinstance(value, list) else [value])
            if item is not None
        ]
        if lines:  # a section with nothing set is left out
            out += ["", "[%s]" % name] + lines
    return "\n".join(out) + "\n"


def _word(value):
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def slug(text):
    return "".join(c if c.isalnum() or c in "._-" else "-" for c in text)


class Units:
    """The files one task renders: {path under root: content}; see the docstring."""

    def __init__(self, owner, root="/"):
        self.owner, self.root, self.files, self.weak = owner, root, {}, set()
        self.header = OWNER + owner

    def _put(self, path, content):
        self.files[path] = content

    def netdev(self, name, kind, sections=(), weak=False, mtu=None):
        """A device networkd makes. `weak`: a file another task may own instead (a mesh's
        segment bridge, which a linux_bridge task may declare): kept if it does."""
        path = "%s/%s%s.netdev" % (NETWORK_DIR, PREFIX, name)
        netdev = [("Name", name), ("Kind", kind), ("MTUBytes", mtu)]
        self._put(path, unit_text(self.header, [("NetDev", netdev)] + list(sections)))
        if weak:
            self.weak.add(path)

    def link(self, dev, pairs):
        """A .link file for a device vnetctl makes (udev applies it as the device appears)."""
        sections = [("Match", [("OriginalName", dev)]), ("Link", pairs)]
        self._put("%s/%s%s.link" % (NETWORK_DIR, PREFIX, dev), unit_text(self.header, sections))

    def network(self, dev, sections):
        """Settings of `dev`'s .network, as a drop-in of the file networkd uses for it."""
        base = self._foreign_base(dev)
        if base is None:
            base = "%s%s.network" % (PREFIX, dev)
            self._put("%s/%s" % (NETWORK_DIR, base), unit_text(
                BASE + dev + ": its settings are in " + base + ".d/", [
                    ("Match", [("Name", dev)]), ("Link", [("RequiredForOnline", False)]),
                    ("Network", [("ConfigureWithoutCarrier", True), ("IPv6AcceptRA", False),
                                 ("KeepConfiguration", True)]),
                ]))  # fmt: skip
        path = "%s/%s.d/%s%s.conf" % (NETWORK_DIR, base, PREFIX, slug(self.owner))
        text = self.files.get(path)
        body = unit_text(self.header, sections)
        self._put(path, body if text is None else text + body[len(self.header) + 1 :])

    def boot(self, devices, lines):
        """tc lines the oneshot unit runs at boot, once `devices` exist."""
        head = self.header + "\n" + "".join("# device: %s\n" % d for d in devices)
        self._put("%s/%s%s.tc" % (BOOT_DIR, PREFIX, slug(self.owner)),
                  head + "".join(line + "\n" for line in lines))  # fmt: skip

    def _foreign_base(self, dev):
        """The name of the file of someone else's that networkd configures `dev` with,
        when it matches exactly `dev`; None when networkd uses no file (or ours)."""
        path = _network_file(self.root, dev)
        if not path or os.path.basename(path).startswith(PREFIX):
            return None
        try:
            with open(os.path.join(self.root, path.lstrip("/"))) as handle:
                match = _section(handle.read(), "Match")
        except OSError:
            return None
        if match != [("Name", dev)]:
            why = "%s is configured by %s, which matches more than %s" % (dev, path, dev)
            raise PersistError(why + ": give it a file of its own, or set persist: none")
        return os.path.basename(path)


class PersistError(Exception):
    pass


def ip_sections(state):
    """[Network] Address= and a [Route] per route of a vnet_ip-style state: {"addresses":
    ["10.0.0.5/24"], "routes": ["default via 10.0.0.1 metric 100"]} (vnet_fib's TEXTs)."""
    sections = [("Network", [("Address", sorted(state.get("addresses") or []))])]
    sections += [("Route", vnet_fib.networkd(r)) for r in sorted(state.get("routes") or [])]
    return sections if state.get("addresses") or state.get("routes") else []


def bridge_vlan(member):
    """[BridgeVLAN] of a vnet_vlans membership {"vlans": "1,100-110", "pvid", "untagged"}."""
    pairs = [("PVID", member.get("pvid"))]
    pairs += [("VLAN", [v for v in (member.get("vlans") or "").split(",") if v])]
    pairs += [("EgressUntagged", [v for v in (member.get("untagged") or "").split(",") if v])]
    return [("BridgeVLAN", pairs)]


def htb_sections(state):
    """[HierarchyTokenBucket], a [HierarchyTokenBucketClass] per class and its leaf qdisc,
    of a traffic_shaping egress state (rates in Mbit/s, class ids "1:2")."""
    default = state["root"].rpartition(" ")[2]
    out = [("HierarchyTokenBucket", [("Parent", "root"), ("Handle", 1),
                                     ("DefaultClass", "%x" % int(default, 16))])]  # fmt: skip
    out.append(_htb_class("1:0", "1:1", state["rate"], state["ceil"], None, 1514))
    for info in sorted(state["classes"].values(), key=lambda c: int(c["id"][2:], 16)):
        out.append(_htb_class("1:1", info["id"], info["rate"], info["ceil"], info["prio"],
                              info["quantum"]))  # fmt: skip
        if info.get("leaf"):
            out.append((LEAVES[info["leaf"]], [("Parent", info["id"]),
                                               ("Handle", info["id"][2:])]))  # fmt: skip
    return out


LEAVES = {"fq_codel": "FairQueueingControlledDelay", "pfifo": "PFIFO"}


def _htb_class(parent, cid, rate, ceil, prio, quantum):
    pairs = [("Parent", parent), ("ClassId", cid), ("Priority", prio), ("QuantumBytes", quantum)]
    pairs += [("Rate", "%dK" % round(rate * 1000)), ("CeilRate", "%dK" % round(ceil * 1000))]
    return ("HierarchyTokenBucketClass", pairs)


def link_section(pairs):
    """[Link]: MTUBytes=, ActivationPolicy= (up, down) and the like."""
    return [("Link", pairs)]


def seconds(value):
    return None if value is None else "%gs" % value


def _network_file(root, dev):
    """NETWORK_FILE of `dev` in networkd's state (/run/systemd/netif/links/IFINDEX)."""
    try:
        with open(os.path.join(root, "sys/class/net", dev, "ifindex")) as handle:
            index = handle.read().strip()
        with open(os.path.join(root, "run/systemd/netif/links", index)) as handle:
            state = handle.read()
    except OSError:
        return None
    for text in state.splitlines():
        if text.startswith("NETWORK_FILE="):
            return text[len("NETWORK_FILE=") :]
    return None


def _section(text, name):
    pairs, inside = [], False
    for raw in text.splitlines():
        item = raw.strip()
        if not item or item[0] in "#;":
            continue
        if item.startswith("["):
            inside = item == "[%s]" % name
        elif inside and "=" in item:
            key, _, value = item.partition("=")
            pairs.append((key.strip(), value.strip()))
    return pairs


# ---- what is on disk ---------------------------------------------------------------


def _read(path):
    try:
        with open(path) as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError):
        return None


def owned(root):
    """{path under root: content} of every file vnetctl wrote (its names, its header)."""
    found = {}
    for directory in (NETWORK_DIR, BOOT_DIR):
        full = os.path.join(root, directory)
        for name in sorted(os.listdir(full)) if os.path.isdir(full) else []:
            if name.endswith(".d") and os.path.isdir(os.path.join(full, name)):
                found.update(_owned_in(root, "%s/%s" % (directory, name)))
            elif name.startswith(PREFIX):
                found.update(_owned_in(root, directory, [name]))
    return found


def _owned_in(root, directory, names=None):
    full = os.path.join(root, directory)
    out = {}
    for name in names if names is not None else sorted(os.listdir(full)):
        text = _read(os.path.join(full, name)) if name.startswith(PREFIX) else None
        if text is not None and text.startswith((OWNER, BASE)):
            out["%s/%s" % (directory, name)] = text
    return out


def _owner(text):
    first = text.split("\n", 1)[0]
    return first[len(OWNER) :] if first.startswith(OWNER) else None


def compare(owner, rendered, on_disk, weak=()):
    """[{path, before, after}] where the disk differs from what `owner` renders: a file
    missing or different, one of its files no longer rendered (after None). Files of
    other owners are left to them; a `weak` file another owner has is theirs."""
    out = []
    for path in sorted(set(rendered) | set(on_disk)):
        before, after = on_disk.get(path), rendered.get(path)
        if after is None and (before is None or _owner(before) != owner):
            continue
        if path in weak and before is not None and _owner(before) not in (owner, None):
            continue
        if before != after:
            out.append({"path": path, "before": before, "after": after})
    return out


def settle(units, check):
    """Make the disk hold what `units` renders: returns the files changed (or, in check
    mode, that would change), each {path, before, after}."""
    root = units.root
    changes = compare(units.owner, units.files, owned(root), units.weak)
    if check or not changes:
        return changes
    for change in changes:
        if change["after"] is None:
            _remove(os.path.join(root, change["path"]))
        else:
            write_atomic(os.path.join(root, change["path"]), change["after"])
    return changes + _tidy(root, changes)


def write_atomic(path, text):
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    temp = "%s.vnetctl-%d.tmp" % (path, os.getpid())
    with open(temp, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(temp, 0o644)
    os.rename(temp, path)


def _remove(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _tidy(root, changes):
    """Bases without drop-ins go, and their empty directories; the oneshot unit exists
    while a boot.d file does. Returns what it changed, as settle() does."""
    done = []
    for change in changes:
        directory = os.path.dirname(os.path.join(root, change["path"]))
        gone = change["after"] is None and directory.endswith(".network.d")
        if gone and not os.listdir(directory):
            os.rmdir(directory)
            base = directory[: -len(".d")]
            text = _read(base) or ""
            if text.startswith(BASE):
                _remove(base)
                done.append({"path": change["path"].rpartition("/")[0][: -len(".d")],
                             "before": text, "after": None})  # fmt: skip
    boot = os.path.join(root, BOOT_DIR)
    needed = os.path.isdir(boot) and any(n.endswith(".tc") for n in os.listdir(boot))
    unit, wants = os.path.join(root, UNIT_PATH), os.path.join(root, WANTS_PATH)
    if needed and _read(unit) != UNIT:
        done.append({"path": UNIT_PATH, "before": _read(unit), "after": UNIT})
        write_atomic(unit, UNIT)
    if needed and not os.path.lexists(wants):
        os.makedirs(os.path.dirname(wants), mode=0o755, exist_ok=True)
        os.symlink("/" + UNIT_PATH, wants)
    if not needed and os.path.lexists(wants):
        _remove(wants)
    if not needed and _read(unit) == UNIT:
        done.append({"path": UNIT_PATH, "before": UNIT, "after": None})
        _remove(unit)
    return done


# ---- after a task (vnetctl's host program) -----------------------------------------


def after_task(module, params, result, check, facts, persisting):
    """The task's boot configuration, once its running state is right: written when it
    changed (in check mode: what would be written), said in the result (`persist`:
    mode, why, files) and its message; a file that cannot be written fails the task."""
    settings, why = persisting
    info = result["persist"] = {"mode": settings["mode"], "why": why}
    if settings["mode"] != "networkd" or "diff" not in result:
        return
    units = Units(result["resource"], settings["root"])
    try:
        module.persist(params, result["diff"]["after"], facts, units)
        changes = settle(units, check)
    except (PersistError, OSError) as exc:
        result.update(failed=True, msg="%s; boot configuration not written: %s"
                      % (result["msg"], exc))  # fmt: skip
        return
    if changes:
        info["files"] = changes
        text = "%s the boot configuration (%d file%s)" % (
            "would write" if check else "wrote",
            len(changes),
            "" if len(changes) == 1 else "s",
        )
        result["msg"] = text if result["msg"] == "ok" else "%s; %s" % (result["msg"], text)
        result["changed"] = True
