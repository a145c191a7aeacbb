"""Attach-time policy: what a port group does to a VM port is also done when libvirt
attaches the port, before the VM runs, by a libvirt hook vnetctl installs and owns
(port_group, ovs_port_group; the hook itself is vnet_vm_hook).

Per module (MODULE: port_group or ovs_port_group), a task writes:

    /etc/libvirt/hooks/qemu.d/vnetctl-MODULE   the hook (libvirt 6.5 and later run every
                                               executable there, after `qemu`, which stays
                                               the operator's); a few lines of Python
    /var/lib/vnetctl/attach/MODULE/            the code it runs: the module's own file and
                                               the host library files it imports, as this
                                               run has them (the same code, not a copy)
    /etc/vnetctl/attach/MODULE/BRIDGE/NAME.json  the group's declaration (its arguments);
                                               a directory per bridge, as both names may
                                               hold dots (`br.a`+`b` and `br`+`a.b`); left
                                               empty when its last group goes

all of them through the `file` writer (whole or not at all, also on a full disk), after
the task's other steps. The task's state has them as `attach`: `hook` (a digest of the
hook and its code as they are on the host: None when absent), `files` (the paths of the
hook's files there) and `policy` (the group's declaration as its file holds it). So a
hook or code file missing, changed or left over, and a declaration that is not the
task's, are drift, and a run writes them again; `state: absent` removes the group's
file, and the hook and its code with the module's last group. A rollback restores the
declaration and removes a hook the task installed; a hook it replaced (a vnetctl of
another version) cannot be put back and is said so.

The hook records each VM port it handles in /run/vnetctl/vm-ports/PORT.json (the
guest's MAC, its domain): a Linux bridge's tap carries libvirt's fe:... MAC, not the
guest's, so a run learns the guest's from there.

Nothing is written on a host without libvirt (no /etc/libvirt), nor where the modules'
sources cannot be read (they are written as the run has them).

Runs on the managed host: Python 3.9+, standard library only.
"""

import hashlib
import re
import sys

try:  # under ansible-playbook, module_utils files travel with the module
    from ansible.module_utils import vnet_core, vnet_facts, vnet_registry
except ImportError:  # vnetctl's runner preloads every module_utils file
    import vnet_core
    import vnet_facts
    import vnet_registry

HOOK = "/etc/libvirt/hooks/qemu.d/vnetctl-%s"
CODE = "/var/lib/vnetctl/attach/%s"
POLICIES = "/etc/vnetctl/attach/%s"
RECORDS = "/run/vnetctl/vm-ports"
# a declaration is read whole up to this: security_groups' (every group's resolved
# rules) passes 64 KiB at 100 groups of 20 rules
DECLARATION_MAX = 16 << 20
PYCACHE = "/run/vnetctl/pycache"  # the hook's compiled code: not beside it, gone at boot
HOOK_MAIN = "vnet_vm_hook"  # what the hook imports from its code directory
LIBRARY = re.compile(r"\b(vnet_[a-z0-9_]+)\b")  # a library file's name (vnetctl's catalog)

# One python3 (the host has it): every file of every module's hook, a digest each; the
# declarations and port records, their text.
_PROBE = """
import glob, hashlib, json, os
def text(path):
    try:
        with open(path, 'rb') as f: return f.read(%d).decode('utf-8', 'replace')
    except OSError: return None
def digest(path):
    try:
        with open(path, 'rb') as f: found = hashlib.sha256(f.read()).hexdigest()
    except OSError: return None
    return found if '/hooks/' not in path or os.access(path, os.X_OK) else found + ' not executable'
files = glob.glob('/etc/libvirt/hooks/qemu.d/vnetctl-*')
files += glob.glob('/var/lib/vnetctl/attach/*/*.py')
print(json.dumps({'libvirt': os.path.isdir('/etc/libvirt'),
    'files': {p: digest(p) for p in files},
    'policies': {p: text(p) for p in glob.glob('/etc/vnetctl/attach/*/*/*.json')
                 + glob.glob('/etc/vnetctl/attach/*/*.json')},
    'ports': {os.path.basename(p)[:-5]: text(p) for p in glob.glob('%s/*.json')}}))
""" % (DECLARATION_MAX, RECORDS)


def _parse(output):
    return vnet_core.loads(output) if output.strip() else None


FACTS = {"vm_attach": vnet_facts.command(["python3", "-I", "-S", "-c", _PROBE], parse=_parse,
                                         optional=True)}  # fmt: skip


def _found(facts):
    """The probe's findings; None without libvirt, or from facts recorded without them."""
    try:
        data = facts.get("vm_attach")
    except vnet_facts.Missing:
        return None
    return data if data and data.get("libvirt") else None


def guest_mac(facts, port):
    """The MAC libvirt gave the guest behind `port`, as the hook recorded it; None."""
    found = _found(facts) or {}
    try:
        mac = vnet_core.loads(found.get("ports", {}).get(port) or "")["mac"]
    except (ValueError, KeyError, TypeError):
        return None
    return mac.lower() if isinstance(mac, str) else None


def policy_path(module, params):
    return "%s/%s/%s.json" % (POLICIES % module, params["bridge"], params["name"])


def _legacy(module, path):
    """A declaration in the layout of vnetctl before one directory per bridge
    (MODULE/BRIDGE.NAME.json): read by the hook until a run of its group moves it."""
    return path.startswith(POLICIES % module + "/") and path.count("/") == POLICIES.count("/") + 1


def _legacy_of(module, params, found):
    """The paths in the old layout that declare `params`'s group."""
    out = []
    for path, text in (found.get("policies") or {}).items():
        if _legacy(module, path):
            try:
                group = vnet_core.loads(text or "")
            except ValueError:
                continue
            if isinstance(group, dict) and (group.get("bridge"), group.get("name")) == (
                params["bridge"],
                params["name"],
            ):
                out.append(path)
    return sorted(out)


def declared(module, bridge, facts):
    """{group: its declared arguments} of `module`'s groups on `bridge`, as their files
    on the host say ({} where none are written: no libvirt, ansible-playbook). Chosen by
    what each file declares, not by its name: bridge and group names may hold dots."""
    out = {}
    for path, text in ((_found(facts) or {}).get("policies") or {}).items():
        if not path.startswith(POLICIES % module + "/") or not text:
            continue
        try:
            group = vnet_core.loads(text)
        except ValueError:
            continue  # an unreadable declaration is the drift of its own group
        if isinstance(group, dict) and group.get("bridge") == bridge:
            out[str(group.get("name"))] = group
    return out


def policy(params):
    """What a group's file holds: its declared arguments (unset ones left out)."""
    return {k: v for k, v in sorted(params.items()) if v is not None and k != "state"}


# ---- the hook's files -----------------------------------------------------------------


def _source(name):
    module = sys.modules.get(name)
    loader = getattr(module, "__loader__", None)
    try:
        return loader.get_source(name) if loader is not None else None
    except (ImportError, OSError):
        return None


def hook_files(module):
    """{path: text} of the hook of `module` (a module name) and its code, as loaded here;
    None when a source cannot be read."""
    own = _source("vnet_module_" + module)
    if own is None:
        return None
    stub = _stub(module, sys.executable or "/usr/bin/python3")
    files = {HOOK % module: stub, "%s/%s.py" % (CODE % module, module): own}
    todo, seen = ["vnet_host", HOOK_MAIN] + LIBRARY.findall(own), set()
    while todo:
        name = todo.pop()
        text = _source(name) if name not in seen else None
        seen.add(name)
        if text is None:
            continue
        files["%s/%s.py" % (CODE % module, name)] = text
        todo += LIBRARY.findall(text)
    needed = ("vnet_host", HOOK_MAIN)
    return files if all("%s/%s.py" % (CODE % module, n) in files for n in needed) else None


def _stub(module, python):
    return """#!%s -IS
# vnetctl owner: %s's attach-time hook (README, "Port groups at VM start"), written by
# vnetctl with the code it runs in %s:
# do not edit, a run writes it again.
import sys
sys.path.insert(0, %r)
sys.pycache_prefix = %r
import %s
sys.exit(%s.main(%r, sys.argv[1:], sys.stdin))
""" % (python, module, CODE % module, CODE % module, PYCACHE, HOOK_MAIN, HOOK_MAIN, module)


def digest(digests):
    """One digest of a hook and its code, from each file's sha256 ({path: hex})."""
    if not digests:
        return None
    lines = "".join("%s %s\n" % (path, digests[path]) for path in sorted(digests))
    return "sha256:" + hashlib.sha256(lines.encode()).hexdigest()[:16]


def _ours(module, path):
    return path == HOOK % module or path.startswith(CODE % module + "/")


# ---- the task's state -------------------------------------------------------------------


def read(module, params, facts):
    """The task's `attach` state (see the docstring), or None where nothing is written."""
    found = _found(facts)
    if found is None or hook_files(module) is None:
        return None
    digests = {p: h for p, h in found.get("files", {}).items() if _ours(module, p) and h}
    text = found.get("policies", {}).get(policy_path(module, params))
    try:
        declared = vnet_core.loads(text) if text is not None else None
    except ValueError:
        declared = {"unreadable": text[:200]}
    state = {"hook": digest(digests), "files": sorted(digests), "policy": declared}
    legacy = _legacy_of(module, params, found)
    return dict(state, legacy=legacy) if legacy else state


def desired(module, params, current, facts):
    """The `attach` state after the task: the hook and its code as this run has them,
    unless `state: absent` removes the module's last group."""
    if current is None:
        return None
    present = params["state"] == "present"
    mine = policy_path(module, params)
    found = _found(facts) or {}
    gone = set(_legacy_of(module, params, found))
    others = [p for p in found.get("policies", {})
              if p.startswith(POLICIES % module + "/") and p != mine and p not in gone]  # fmt: skip
    moved = {"legacy": []} if gone else {}  # the old layout's file of this group goes
    if not present and not others:
        return dict({"hook": None, "files": [], "policy": None}, **moved)
    files = hook_files(module)
    digests = {p: hashlib.sha256(t.encode()).hexdigest() for p, t in files.items()}
    return dict({"hook": digest(digests), "files": sorted(files),
                 "policy": policy(params) if present else None}, **moved)  # fmt: skip


def steps(module, group, current, desired):
    """File steps from one `attach` state to another, put after the task's other steps;
    `group`: {"name", "bridge"}. The hook is written executable."""
    if current is None or desired is None:
        return []
    out = []
    if desired["hook"] != current["hook"] or desired["files"] != current["files"]:
        files = hook_files(module) if desired["hook"] is not None else {}
        out += [vnet_registry.document_step(p, t, 0o755 if p == HOOK % module else 0o644)
                for p, t in sorted(files.items())]  # fmt: skip
        out += [vnet_registry.document_step(p, None) for p in current["files"] if p not in files]
    if desired["policy"] != current["policy"]:
        text = None if desired["policy"] is None else vnet_core.dumps(desired["policy"]) + "\n"
        out.append(vnet_registry.document_step(policy_path(module, group), text))
    out += [vnet_registry.document_step(p, None) for p in current.get("legacy", ())]
    return out
