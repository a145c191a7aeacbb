"""What the host's kernel can do, for modules that need more than a plain bridge: the
`kernel` fact source, and require(), which refuses a task before any change when the
kernel lacks a feature, naming it and the module to load.

Evidence, in one shell run: whether the module is loaded (or built in: the files it
makes), whether modprobe can load it (`modprobe -n`), and the running kernel's config
(/proc/config.gz or /boot/config-VERSION). Bridge VLAN filtering is no module of its
own: an existing bridge tells (its `ip -d link` data has `vlan_default_pvid` only on a
kernel built with it), else the config.

Runs on the managed host: Python 3.9+, standard library only.
"""

try:  # under ansible-playbook, module_utils files travel with the module
    from ansible.module_utils import vnet_core, vnet_facts
except ImportError:  # vnetctl's runner preloads every module_utils file
    import vnet_core
    import vnet_facts

# feature -> (what it is, CONFIG_ option, module, file that exists once it is loaded)
FEATURES = {
    "bonding": ("NIC bonding", "CONFIG_BONDING", "bonding",
                "/sys/class/net/bonding_masters"),
    "8021q": ("802.1Q VLAN devices", "CONFIG_VLAN_8021Q", "8021q", "/proc/net/vlan/config"),
    "bridge_vlan_filtering": ("bridge VLAN filtering", "CONFIG_BRIDGE_VLAN_FILTERING",
                              "bridge", None),
}  # fmt: skip

_PROBE = (
    "for f in /sys/class/net/bonding_masters /proc/net/vlan/config; do "
    '[ -e "$f" ] && echo "loaded $f"; done; '
    'for m in bonding 8021q; do modprobe -n -q "$m" 2>/dev/null && echo "loadable $m"; done; '
    'c="/boot/config-$(uname -r)"; '
    "if [ -r /proc/config.gz ]; then echo config; zcat /proc/config.gz; "
    'elif [ -r "$c" ]; then echo config; cat "$c"; fi '
    "| grep -E '^(config$|CONFIG_(BONDING|VLAN_8021Q|BRIDGE_VLAN_FILTERING)=)'; exit 0"
)


def evidence(output):
    """The probe's lines: `loaded FILE`, `loadable MODULE`, `config`, `CONFIG_X=y|m`."""
    return [text.strip() for text in output.splitlines() if text.strip()]


SOURCE = vnet_facts.command(["sh", "-c", _PROBE], parse=evidence)
FACTS = {"kernel": SOURCE}


def has(feature, facts):
    """True, False, or None (cannot tell: no config, and no bridge to look at)."""
    _, option, module, loaded = FEATURES[feature]
    if feature == "bridge_vlan_filtering":
        for name in sorted(facts.links):
            if facts.kind(name) == "bridge":
                return "vlan_default_pvid" in (facts.link(name)["linkinfo"].get("info_data") or {})
    lines = set(facts.get("kernel") or [])
    if loaded and "loaded " + loaded in lines or "loadable " + module in lines:
        return True
    if option + "=y" in lines:
        return True
    if "config" in lines or loaded:
        return False
    return None


def require(feature, facts, what_for):
    """ModuleError, before any change, when the kernel lacks `feature`."""
    if has(feature, facts) is False:
        name, option, module, _ = FEATURES[feature]
        if module == "bridge":
            hint = "it is part of the `bridge` module: use a kernel whose bridge is built with it"
        else:
            hint = "load the `%s` module (`modprobe %s`) or use a kernel built with it" % (
                module,
                module,
            )
        raise vnet_core.ModuleError("%s: this host's kernel lacks %s (%s); %s. Nothing was "
                                    "changed." % (what_for, name, option, hint))  # fmt: skip
