"""An Open vSwitch bridge's ports as ovs_bridge declares them (its exact set, but for
the VM ports it leaves alone: ovs_bridge): physical ports, internal ports, and VM ports
by name or by pattern (what libvirt makes), each with its VLAN settings and MTU; those
`detach` names are left out; bonds are vnet_ovs_teaming's.

Runs on the managed host: Python 3.9+, standard library only.
"""

import fnmatch

try:  # under ansible-playbook, module_utils files travel with the module
    from ansible.module_utils import vnet_core
    from ansible.module_utils import vnet_ovs_config as ovs
except ImportError:  # vnetctl's runner preloads every module_utils file
    import vnet_core
    import vnet_ovs_config as ovs

ModuleError, step = vnet_core.ModuleError, vnet_core.step


def declares(params, port):
    """The task declares `port` (by name, or a `type: vm` pattern) or detaches it."""
    return port in (params.get("detach") or []) or any(
        fnmatch.fnmatchcase(port, p["name"]) if p["type"] == "vm" else port == p["name"]
        for p in params.get("ports") or []
    )


def vm_declared(params, port):
    """The task declares `port` as a VM's (`type: vm`, by name or pattern), not detached."""
    vms = [p["name"] for p in params.get("ports") or [] if p["type"] == "vm"]
    detached = params.get("detach") or []
    return port not in detached and any(fnmatch.fnmatchcase(port, vm) for vm in vms)


def vm_ports(params, cfg, facts):
    """The bridge's ports of one interface that are a VM's (vnet_hostnet.vm_port) and
    that the task neither declares nor detaches: the hypervisor's, left alone."""
    name = params["name"]
    ports = (cfg["bridges"].get(name) or {}).get("ports") or []
    return sorted(
        port for port in ports
        if port != name and cfg["ports"][port]["interfaces"] == [port]
        and not declares(params, port) and facts.net.vm_port(port)
    )  # fmt: skip


def read(cfg, port):
    """A port of one interface as state: its VLAN settings, type and MTU."""
    interface = cfg["interfaces"].get(port, {})
    return dict({k: cfg["ports"][port][k] for k in ovs.VLAN_FIELDS},
                type=interface.get("type", "system"), mtu=interface.get("mtu_request"))  # fmt: skip


def desired(params, current, cfg, facts, taken):
    declared = params.get("ports")
    if declared is None:
        return None
    name = params["name"]
    have = current.get("port_config", {})
    detach = set(params.get("detach") or [])
    names, conf = [], {}
    for port in declared:
        kind = port["type"]
        if kind == "vm":  # a detached port matches no pattern: it would join again
            pattern = port["name"]
            matches = [p for p in current.get("ports", []) if fnmatch.fnmatchcase(p, pattern)
                       and p not in detach]  # fmt: skip
            matches += [
                d for d in sorted(facts.links)
                if fnmatch.fnmatchcase(d, pattern) and d not in matches and d != name
                and d not in detach and not cfg["ports"].get(d) and not facts.link(d).get("master")
            ]  # fmt: skip
        else:
            vnet_core.check_ifname(port["name"], "port name")
            if port["name"] in detach:
                raise ModuleError("bridge %s: %s both in ports and in detach"
                                  % (name, port["name"]))  # fmt: skip
            matches = [port["name"]]
            if kind == "system" and facts.link(port["name"]) is None:
                raise ModuleError("port %s of bridge %s does not exist on this host"
                                       % (port["name"], name))  # fmt: skip
            if kind == "system":
                ovs.check_free(port["name"], name, cfg, facts, "port")
        for dev in matches:
            if dev in taken or dev == name:
                raise ModuleError("%s is declared twice on bridge %s" % (dev, name))
            if port.get("addresses") is not None and kind != "internal":
                raise ModuleError("port %s: addresses are for internal ports" % dev)
            entry = dict(have.get(dev, {}), type="internal" if kind == "internal" else "system")
            entry.update(declared=True, vm=kind == "vm")
            for field in ovs.VLAN_FIELDS:
                if port.get(field) is not None:
                    entry[field] = port[field]
            if port.get("mtu") is not None:
                entry["mtu"] = entry["declared_mtu"] = port["mtu"]
            names.append(dev)
            taken.add(dev)
            conf[dev] = entry
    return names, conf


def steps(current, desired):
    name, out = desired["name"], []
    have, conf = current.get("port_config", {}), desired["port_config"]
    old = set(current.get("port_config", {}))
    for port in sorted(old - set(desired["ports"])):
        out.append(step("ovs-vsctl", "del-port", name, port))
    for port in sorted(conf):
        want = conf[port]
        now = have.get(port, {})
        if port not in old:
            out.append(step("ovs-vsctl", "add-port", name, port))
            now = {"type": "system"}
        if want["type"] != now.get("type"):
            out.append(step("ovs-vsctl", "set", "interface", port, "type=" + want["type"]))
        out += ovs.port_vlan_steps(port, now, want)
        out += ovs.mtu_steps(port, now.get("mtu"), want.get("mtu"))
    return out


def params(port, conf):
    out = {"name": port, "type": conf["type"] if conf["type"] == "internal" else "system"}
    out.update({k: conf[k] for k in ovs.VLAN_FIELDS if conf[k] not in (None, [])})
    if conf.get("mtu") is not None:
        out["mtu"] = conf["mtu"]
    return out
