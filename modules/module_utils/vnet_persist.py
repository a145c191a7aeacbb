"""Boot persistence: what a task applies is also written as the host's boot configuration,
systemd-networkd units, so a reboot brings it back (README, "Boot persistence").

A module renders its units with the optional hook `persist(params, desired, facts,
units)`: `units` (Units, below) collects them: `netdev(name, ...)` a device networkd
makes, `network(dev, ...)` settings of a device's .network (a drop-in: several tasks may
configure one device), `link(dev, ...)` a udev .link file (an interface alias),
`sysctl(pairs)` kernel settings systemd-sysctl applies (/etc/sysctl.d), and
`boot(devices, lines)` tc lines networkd cannot express, which the oneshot unit
vnetctl-reapply.service feeds to `tc -batch` at boot, once the devices exist. One
writer (`settle`) compares them with the files on disk, writes what changed (temporary
file, then rename), removes the files the task's resource wrote earlier and no longer
renders, and says what it did or, in check mode, would do (each file's content before
and after: the controller shows the diff, drift reports `not persisted`).

Every file vnetctl writes starts with "# vnetctl owner: RESOURCE" and its name with
"10-vnetctl-" ("99-vnetctl-" in /etc/sysctl.d, where the last file wins): vnetctl
touches no other file. A device that networkd configures from a
file of someone else's that matches exactly that device (`[Match] Name=DEV`) gets
vnetctl's settings as a drop-in of that file; any other device gets a file of its own,
`10-vnetctl-DEV.network`, whose settings are drop-ins from every task that configures it
(removed with the last of them). A device that is a port at boot (of a bridge, a bond,
an OVS bridge) whose foreign file gives it addresses or routes gets vnetctl's own file
too: it sorts before the foreign one, which networkd then no longer uses for it (a
drop-in cannot take addresses away: vnet_networkd), and the drop-ins of every task
follow it there, back when no port is left. The oneshot unit and its enable link are
rendered by every task with boot lines: missing, they are drift and a run writes them.

Settings (vnetctl sends them per play): mode networkd | none | auto (networkd where the
host booted with systemd and systemd-networkd is enabled or running, else none), and
root (default "/"; the lab writes under a directory of its own).

Runs on the managed host: Python 3.9+, standard library only.
"""

import os

try:  # under ansible-playbook, module_utils files travel with the module
    from ansible.module_utils import vnet_files
    from ansible.module_utils import vnet_networkd as networkd
except ImportError:  # vnetctl's runner preloads every module_utils file
    import vnet_files
    import vnet_networkd as networkd

PREFIX = "10-vnetctl-"
SYSCTL_PREFIX = "99-vnetctl-"  # sysctl.d: the last file that sets a key wins
OWNER = "# vnetctl owner: "
BASE = "# vnetctl: the base of "
NETWORK_DIR = "etc/systemd/network"
BOOT_DIR = "etc/vnetctl/boot.d"
SYSCTL_DIR = "etc/sysctl.d"
UNIT_NAME = "vnetctl-reapply.service"
UNIT_PATH = "etc/systemd/system/" + UNIT_NAME
WANTS_PATH = "etc/systemd/system/multi-user.target.wants/" + UNIT_NAME
LINK = "symlink to "  # the content a symbolic link has in a change: "symlink to TARGET"
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

    def network(self, dev, sections, port=None):
        """Settings of `dev`'s .network, as a drop-in of the file networkd uses for it.
        `port`: the master `dev` is a port of at boot (a bridge, a bond, an OVS bridge);
        the drop-in says so (networkd.PORT_MARK): `dev` must have no addresses there."""
        base = self._base(dev, port)
        path = "%s/%s.d/%s%s.conf" % (NETWORK_DIR, base, PREFIX, slug(self.owner))
        text = self.files.get(path)
        body = unit_text(self.header, sections)
        text = body if text is None else text + body[len(self.header) + 1 :]
        if port is not None and not networkd.is_port(text):
            text = text.replace("\n", "\n%s\n" % (networkd.PORT_MARK % port), 1)
        self._put(path, text)

    def sysctl(self, pairs):
        """Kernel settings, [(key, value)], that systemd-sysctl applies at boot: one file of
        the task's own, named to come after the distribution's and /etc/sysctl.conf's."""
        body = "".join("%s = %s\n" % (key, value) for key, value in pairs)
        path = "%s/%s%s.conf" % (SYSCTL_DIR, SYSCTL_PREFIX, slug(self.owner))
        self._put(path, self.header + "\n" + body)

    def boot(self, devices, lines):
        """tc lines the oneshot unit runs at boot, once `devices` exist; the unit, and
        its enable link, with them."""
        head = self.header + "\n" + "".join("# device: %s\n" % d for d in devices)
        self._put("%s/%s%s.tc" % (BOOT_DIR, PREFIX, slug(self.owner)),
                  head + "".join(line + "\n" for line in lines))  # fmt: skip
        self._put(UNIT_PATH, UNIT)
        self._put(WANTS_PATH, LINK + "/" + UNIT_PATH)

    def _base(self, dev, port):
        """The file `dev`'s settings are drop-ins of: someone else's that configures it,
        unless `dev` is a port at boot that it gives addresses or routes; else vnetctl's
        own (written here)."""
        try:
            theirs = networkd.foreign(self.root, dev, PREFIX)
            ported = port is not None or self._ported(dev, theirs)
            if theirs is not None and not networkd.takes_over(self.root, dev, theirs, ported,
                                                              PREFIX):  # fmt: skip
                return theirs
        except networkd.Refused as exc:
            raise PersistError("%s; or set persist: none" % exc) from None
        base = "%s%s.network" % (PREFIX, dev)
        self._put("%s/%s" % (NETWORK_DIR, base), base_text(dev))
        return base

    def _ported(self, dev, theirs):
        """Another task's drop-in for `dev` says it is a port at boot."""
        found = networkd.drop_ins(self.root, NETWORK_DIR, "%s%s.network" % (PREFIX, dev), PREFIX)
        if theirs is not None:
            found.update(networkd.drop_ins(self.root, NETWORK_DIR, theirs, PREFIX))
        mine = "/%s%s.conf" % (PREFIX, slug(self.owner))
        return any(networkd.is_port(t) for p, t in found.items() if not p.endswith(mine))


def base_text(dev):
    """vnetctl's own .network file for `dev`: its settings are drop-ins."""
    base = "%s%s.network" % (PREFIX, dev)
    return unit_text(BASE + dev + ": its settings are in " + base + ".d/", [
        ("Match", [("Name", dev)]), ("Link", [("RequiredForOnline", False)]),
        ("Network", [("ConfigureWithoutCarrier", True), ("IPv6AcceptRA", False),
                     ("KeepConfiguration", True)]),
    ])  # fmt: skip


class PersistError(Exception):
    pass


# the sections modules render (vnet_networkd writes them)
unit_text, ip_sections, bridge_vlan = networkd.unit_text, networkd.ip_sections, networkd.bridge_vlan
htb_sections, link_section, seconds = networkd.htb_sections, networkd.link_section, networkd.seconds


# ---- what is on disk ---------------------------------------------------------------


_read = networkd.read


def owned(root):
    """{path under root: content} of every file vnetctl wrote (its names, its header)."""
    found = {}
    for directory in (NETWORK_DIR, BOOT_DIR, SYSCTL_DIR):
        full = os.path.join(root, directory)
        for name in sorted(os.listdir(full)) if os.path.isdir(full) else []:
            if name.endswith(".d") and os.path.isdir(os.path.join(full, name)):
                found.update(_owned_in(root, "%s/%s" % (directory, name)))
            elif name.startswith((PREFIX, SYSCTL_PREFIX)):
                found.update(_owned_in(root, directory, [name]))
    return found


def _owned_in(root, directory, names=None):
    full = os.path.join(root, directory)
    out = {}
    for name in names if names is not None else sorted(os.listdir(full)):
        ours = name.startswith((PREFIX, SYSCTL_PREFIX)) and not name.endswith(".tmp")
        text = _read(os.path.join(full, name)) if ours else None
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


def settle(units, check, journal=None):
    """Make the disk hold what `units` renders: returns the files changed (or, in check
    mode, that would change), each {path, before, after}. `journal(changes)` runs before
    each write (commit confirmed records there what a rollback restores).

    Whole or not at all, also on a full disk: every new content is first written and
    synced to a temporary file beside its target; only when all of them are, are they
    renamed into place and the old files removed (renames and removals need no space).
    A write that fails, or a journal that cannot record, leaves every file as it was.
    Then other tasks' drop-ins for the devices touched follow each device's base (a
    second write, whole in the same way)."""
    root = units.root
    changes = compare(units.owner, units.files, dict(owned(root), **_shared(root)), units.weak)
    if check or not changes:
        return changes
    done = _apply(root, changes, journal)
    moves = _moves(root, done)
    return done + (_apply(root, moves, journal) if moves else [])


def _apply(root, changes, journal):
    """The changes and what they bring (_tidying): journaled, then written whole."""
    changes = changes + _tidying(root, changes)
    if journal is not None:
        journal(changes)
    _write_all(root, changes)
    return changes


def _tidying(root, changes):
    """What else the changes bring, as changes: a base left without drop-ins goes (its
    directory too); the oneshot unit and its enable link go with the last boot.d file
    (a task with boot lines renders them: Units.boot)."""
    after = {}  # directory -> the names it will hold
    for change in changes:
        directory, _, name = change["path"].rpartition("/")
        if directory not in after:
            after[directory] = _names(root, directory)
        (after[directory].discard if change["after"] is None else after[directory].add)(name)
    done = []
    for directory, names in sorted(after.items()):
        base = directory[: -len(".d")]
        text = _read(os.path.join(root, base)) or ""
        if directory.endswith(".network.d") and not names and text.startswith(BASE):
            done.append({"path": base, "before": text, "after": None})
    if any(n.endswith(".tc") for n in after.get(BOOT_DIR, _names(root, BOOT_DIR))):
        return done
    touched = {change["path"] for change in changes}
    for path, text in sorted(_shared(root).items()):
        if path not in touched and text in (UNIT, LINK + "/" + UNIT_PATH):  # as vnetctl writes
            done.append({"path": path, "before": text, "after": None})
    return done


def _moves(root, changes):
    """Every task's drop-ins for a device the changes touched that belong in another base
    (the one networkd will use for it: vnet_networkd.misplaced), as changes."""
    devices = {networkd.device_of(root, c["path"]) for c in changes} - {None}
    moves = []
    for path, moved, text in networkd.misplaced(root, sorted(devices), NETWORK_DIR, PREFIX):
        now = _read(os.path.join(root, moved))
        moves += [{"path": path, "before": text, "after": None},
                  {"path": moved, "before": now, "after": text}]  # fmt: skip
    return moves


def _shared(root):
    """The oneshot unit and its enable link as they are ("symlink to TARGET")."""
    found = {UNIT_PATH: _read(os.path.join(root, UNIT_PATH))}
    wants = os.path.join(root, WANTS_PATH)
    if os.path.islink(wants):
        found[WANTS_PATH] = LINK + os.readlink(wants)
    elif os.path.lexists(wants):
        found[WANTS_PATH] = _read(wants) or ""
    return {path: text for path, text in found.items() if text is not None}


def _names(root, directory):
    full = os.path.join(root, directory)
    return set(os.listdir(full)) if os.path.isdir(full) else set()


def _write_all(root, changes):
    """The changes, whole (vnet_files.replace_files: contents and enable links staged,
    then renamed, then removals), then the directories left empty."""
    writes, links = [], []
    for change in changes:
        text = change["after"]
        if text is not None:
            target = os.path.join(root, change["path"])
            (links.append((target, text[len(LINK) :])) if text.startswith(LINK)
             else writes.append((target, text)))  # fmt: skip
    removals = [os.path.join(root, c["path"]) for c in changes if c["after"] is None]
    vnet_files.replace_files(writes, links, removals)
    for path in removals:
        directory = os.path.dirname(path)
        if directory.endswith(".network.d") and os.path.isdir(directory) \
                and not os.listdir(directory):  # fmt: skip
            os.rmdir(directory)


# ---- after a task (vnetctl's host program) -----------------------------------------


def after_task(module, params, result, check, facts, persisting, journal=None):
    """The task's boot configuration, once its running state is right: written when it
    changed (in check mode: what would be written), said in the result (`persist`:
    mode, why, files) and its message; files that cannot be written (all of them stay
    as they were: see settle) fail the task. `journal`: as for settle."""
    settings, why = persisting
    info = result["persist"] = {"mode": settings["mode"], "why": why}
    if settings["mode"] != "networkd" or "diff" not in result:
        return
    units = Units(result["resource"], settings["root"])
    try:
        module.persist(params, result["diff"]["after"], facts, units)
        changes = settle(units, check, journal)
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
