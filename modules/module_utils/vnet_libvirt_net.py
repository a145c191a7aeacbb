"""libvirt networks in bridge mode as libvirt_network reads and writes them: the `libvirt`
fact source, and the network's XML read into plain fields and written back from them.
(A port-group policy becomes these fields in vnet_vm_portgroups.)

Fields: `bridge`, `virtualport` ("openvswitch" or None), `portgroups` ({name: {default,
vlan, trunks, native, bandwidth, filter}}) and `extra`: every part of the XML these do
not hold (another element, an attribute vnetctl does not model), one string each, so a
definition is compared and written back whole. A port group's VLANs: `vlan` alone is
an access port; `trunks` alone a trunk; `vlan` with `trunks` and `native` ("tagged" or
"untagged") a trunk whose native VLAN is `vlan`. `bandwidth` is libvirt's: inbound (to
the guest) and outbound (from it), `average` and `peak` in kB/s (1000 bytes), `burst` in kB.
`filter` (an nwfilter's name) is kept in the network's `<metadata>`: libvirt keeps no
filter in a port group (it drops a `<filterref>` there) and applies none from a network.

Runs on the managed host: Python 3.9+, standard library only.
"""

import base64
import copy
from xml.etree import ElementTree as ET

try:  # under ansible-playbook, module_utils files travel with the module
    from ansible.module_utils import vnet_core, vnet_facts, vnet_libvirt
except ImportError:  # vnetctl's runner preloads every module_utils file
    import vnet_core
    import vnet_facts
    import vnet_libvirt

ModuleError = vnet_core.ModuleError
NS = "urn:vnetctl:libvirt-network:1"  # vnetctl's part of a network's <metadata>
ET.register_namespace("vnetctl", NS)
MARK_GROUPS, MARK_GROUP = "{%s}portgroups" % NS, "{%s}portgroup" % NS
DIRECTIONS, RATES = ("inbound", "outbound"), ("average", "peak", "burst")
NATIVE_MODES = ("tagged", "untagged")

# ---- the fact source -------------------------------------------------------------------

# Each network as one line: its UUID, the number of guest interfaces attached to it (its
# ports; `-`: not listed, as for an inactive network; the `connections` of its XML is
# lost by a `net-update --live`, libvirt 9.0), the
# persistent definition and the running one (base64: nothing in them can break the
# framing), and the `virsh net-info` words.
_SCRIPT = """export LC_ALL=C; set -f
command -v virsh >/dev/null 2>&1 || { echo "absent"; exit 0; }
v() { %s "$@"; }
uuids=$(v net-list --all --uuid 2>&1) || { echo "unreachable" $uuids; exit 0; }
echo "ok"
for u in $uuids; do
    info=$(v net-info "$u" | tr -s ' \\n' '  ') || continue
    config=$(v net-dumpxml --inactive "$u") || continue
    live=$(v net-dumpxml "$u") || continue
    ports=$(v net-port-list --uuid "$u" 2>/dev/null) && ports=$(echo $ports | wc -w) || ports=-
    echo "network $u $ports $(printf %%s "$config" | base64 -w0)" \
        "$(printf %%s "$live" | base64 -w0) $info"
done
v nwfilter-list 2>/dev/null | while read -r uuid name; do
    case "$uuid" in *-*-*-*-*) echo "filter $name";; esac
done
exit 0
""" % " ".join(vnet_libvirt.VIRSH)


def parse_facts(output):
    """{"status": "ok"|"absent"|"unreachable", "error", "networks": {name: {uuid, ports,
    active, persistent, autostart, config, live}}, "filters": [names]}."""
    lines = output.splitlines()
    head = lines[0].split(" ", 1) if lines else ["absent"]
    out = {"status": head[0], "error": head[1].strip() if len(head) > 1 else None,
           "networks": {}, "filters": []}  # fmt: skip
    for text in lines[1:]:
        words = text.split()
        if words[:1] == ["filter"] and len(words) == 2:
            out["filters"].append(words[1])
        elif words[:1] == ["network"]:
            name, network = _network_line(words)
            out["networks"][name] = network
    return out


def _network_line(words):
    """One network's line; a line that does not read whole fails the whole fact: a
    network left out would be one vnetctl defines again."""
    try:
        config, live = (base64.b64decode(w, validate=True).decode() for w in words[3:5])
        info = " ".join(words[5:])
        network = {k: "%s: yes" % k.capitalize() in info for k in ("active", "persistent",
                                                                    "autostart")}  # fmt: skip
        network.update(uuid=words[1], config=config, live=live,
                       ports=int(words[2]) if words[2] != "-" else None)  # fmt: skip
    except (ValueError, IndexError):
        raise ModuleError("cannot read libvirt's networks: %r" % " ".join(words)[:200]) from None
    if network["active"] and network["ports"] is None:
        raise ModuleError("cannot list the ports of libvirt network %s (virsh net-port-list)"
                          % words[1])  # fmt: skip
    return _parse(config).findtext("name"), network


SOURCE = vnet_facts.command(["sh", "-c", _SCRIPT], parse=parse_facts)
FACTS = {"libvirt": SOURCE}


def available(facts):
    """The `libvirt` fact, or ModuleError saying what is missing."""
    found = facts.get("libvirt")
    if found["status"] == "absent":
        raise ModuleError("libvirt is not installed on this host (no virsh): install "
                          "libvirt-daemon-system and libvirt-clients")  # fmt: skip
    if found["status"] != "ok":
        raise ModuleError("libvirtd does not answer at qemu:///system (%s): is it running?"
                          % (found["error"] or "no answer"))  # fmt: skip
    return found


# ---- XML -> fields --------------------------------------------------------------------

# tag -> (attributes, children) the fields hold (or, `connections`, ignore: the ports are
# counted); anything else is `extra`
MODELED = {
    "network": (("connections",), ("name", "uuid", "forward", "bridge", "virtualport",
                                   "portgroup", "metadata")),
    "name": ((), ()), "uuid": ((), ()),
    "forward": (("mode",), ()), "bridge": (("name",), ()), "virtualport": (("type",), ()),
    "portgroup": (("name", "default"), ("vlan", "bandwidth")),
    "vlan": (("trunk",), ("tag",)), "tag": (("id", "nativeMode"), ()),
    "bandwidth": ((), DIRECTIONS), "inbound": (RATES, ()), "outbound": (RATES, ()),
    "metadata": ((), (MARK_GROUPS,)), MARK_GROUPS: ((), (MARK_GROUP,)),
    MARK_GROUP: (("name", "filter"), ()),
}  # fmt: skip
IDENTITY = {"portgroup": "name", MARK_GROUP: "name", "tag": "id"}


def empty_bandwidth():
    return {d: {r: None for r in RATES} for d in DIRECTIONS}


def portgroup(default=False, vlan=None, trunks=(), native=None, bandwidth=None, filter=None):
    """A port group's fields, every one present (absent ones None or empty)."""
    return {"default": bool(default), "vlan": vlan, "trunks": sorted(set(trunks) - {vlan}),
            "native": native, "bandwidth": bandwidth or empty_bandwidth(),
            "filter": filter}  # fmt: skip


def read_network(text):
    """{name, forward, bridge, virtualport, portgroups, extra} of a network's XML."""
    root = _parse(text)
    filters = {m.get("name"): m.get("filter") for m in root.iterfind(
        "metadata/%s/%s" % (MARK_GROUPS, MARK_GROUP))}  # fmt: skip
    groups = {}
    for element in root.iterfind("portgroup"):
        name = element.get("name")
        groups[name] = dict(_vlans(element.find("vlan")), default=element.get("default") == "yes",
                            bandwidth=_bandwidth(element.find("bandwidth")),
                            filter=filters.get(name))  # fmt: skip
    return {
        "name": root.findtext("name"),
        "forward": _attr(root, "forward", "mode"),
        "bridge": _attr(root, "bridge", "name"),
        "virtualport": _attr(root, "virtualport", "type"),
        "portgroups": groups,
        "extra": _extra(root),
    }


def _parse(text):
    try:
        return ET.fromstring(text)
    except ET.ParseError as exc:
        raise ModuleError("libvirt printed a network's XML that does not parse: %s" % exc) from None


def _attr(root, tag, name):
    element = root.find(tag)
    return element.get(name) if element is not None else None


def _vlans(element):
    tags = [] if element is None else [
        (int(t.get("id")), t.get("nativeMode")) for t in element.iterfind("tag")]  # fmt: skip
    native = [(vid, mode) for vid, mode in tags if mode]
    ids = [vid for vid, _ in tags]
    if native:
        return {
            "vlan": native[0][0],
            "native": native[0][1],
            "trunks": sorted(set(ids) - {native[0][0]}),
        }
    if len(ids) == 1 and element.get("trunk") != "yes":
        return {"vlan": ids[0], "native": None, "trunks": []}
    return {"vlan": None, "native": None, "trunks": sorted(ids)}


def _bandwidth(element):
    out = empty_bandwidth()
    for direction in DIRECTIONS:
        found = element.find(direction) if element is not None else None
        if found is not None:
            out[direction] = {r: int(found.get(r)) if found.get(r) else None for r in RATES}
    return out


def _extra(root):
    """What the fields do not hold, one string per part: the root's own attributes, then
    each child's remainder (a known element with only its unknown attributes and
    children; a port group's named by its `name`)."""
    rest = _remainder(root)
    if rest is None:
        return []
    out = [_text(ET.Element("network", rest.attrib))] if rest.attrib else []
    return out + [_text(child) for child in rest]


def _remainder(element):
    known = MODELED.get(element.tag)
    if known is None:
        return _plain(copy.deepcopy(element))
    attrs, children = known
    out = ET.Element(element.tag, {k: v for k, v in element.attrib.items() if k not in attrs})
    if (element.text or "").strip() and element.tag not in ("name", "uuid"):
        out.text = element.text
    for child in element:
        rest = _remainder(child) if child.tag in children else _plain(copy.deepcopy(child))
        if rest is not None:
            out.append(rest)
    if not out.attrib and len(out) == 0 and out.text is None:
        return None
    if element.tag in IDENTITY:
        out.set(IDENTITY[element.tag], element.get(IDENTITY[element.tag]))
    return out


def _plain(element):
    """Without the blanks libvirt indents with: the same part reads the same however
    it was written."""
    for item in element.iter():
        if not (item.text or "").strip():
            item.text = None
        item.tail = None
    return element


def _text(element):
    return ET.tostring(_plain(element), encoding="unicode")


# ---- fields -> XML --------------------------------------------------------------------


def network_xml(name, state, uuid=None):
    """The whole definition of a bridge-mode network from its fields (`extra` merged
    back where it was read from)."""
    root = ET.Element("network")
    ET.SubElement(root, "name").text = name
    if uuid:
        ET.SubElement(root, "uuid").text = uuid
    filters = {g: pg["filter"] for g, pg in state["portgroups"].items() if pg.get("filter")}
    if filters:
        marks = ET.SubElement(ET.SubElement(root, "metadata"), MARK_GROUPS)
        for group, nwfilter in sorted(filters.items()):
            ET.SubElement(marks, MARK_GROUP, name=group, filter=nwfilter)
    ET.SubElement(root, "forward", mode="bridge")
    ET.SubElement(root, "bridge", name=state["bridge"])
    if state.get("virtualport"):
        ET.SubElement(root, "virtualport", type=state["virtualport"])
    for group in sorted(state["portgroups"]):
        root.append(_portgroup_element(group, state["portgroups"][group]))
    _merge_extra(root, state.get("extra") or [])
    return ET.tostring(root, encoding="unicode")


def portgroup_xml(name, fields, extra=()):
    """One `<portgroup>` (virsh net-update), with its part of the network's `extra`."""
    element = _portgroup_element(name, fields)
    for text in extra:
        part = ET.fromstring(text)
        if part.tag == "portgroup" and part.get("name") == name:
            _merge(element, part)
    return ET.tostring(element, encoding="unicode")


def _portgroup_element(name, fields):
    element = ET.Element("portgroup", name=name)
    if fields.get("default"):
        element.set("default", "yes")
    vlan, trunks, native = fields.get("vlan"), fields.get("trunks") or [], fields.get("native")
    if vlan is not None or trunks:
        tags = ET.SubElement(element, "vlan")
        if trunks or native:
            tags.set("trunk", "yes")
        if vlan is not None:
            ET.SubElement(
                tags, "tag", {"id": str(vlan), **({"nativeMode": native} if native else {})}
            )
        for vid in trunks:
            ET.SubElement(tags, "tag", id=str(vid))
    rates = fields.get("bandwidth") or empty_bandwidth()
    if any(v is not None for d in DIRECTIONS for v in rates[d].values()):
        shaping = ET.SubElement(element, "bandwidth")
        for direction in DIRECTIONS:
            given = {r: str(v) for r, v in rates[direction].items() if v is not None}
            if given:
                ET.SubElement(shaping, direction, given)
    return element


def _merge_extra(root, extra):
    for text in extra:
        part = ET.fromstring(text)
        if part.tag == "network":
            root.attrib.update(part.attrib)
        else:
            _merge_children(root, [part])


def _merge(target, part):
    target.attrib.update(part.attrib)
    _merge_children(target, list(part))


def _merge_children(target, children):
    """A child of a kind the fields hold (and of the same identity) merged into the one
    built, any other appended."""
    for child in children:
        ident = IDENTITY.get(child.tag)
        same = [c for c in target if c.tag == child.tag and c.tag in MODELED
                and (ident is None or c.get(ident) == child.get(ident))]  # fmt: skip
        if same:
            _merge(same[0], child)
        else:
            target.append(copy.deepcopy(child))
