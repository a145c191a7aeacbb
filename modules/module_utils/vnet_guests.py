"""What libvirt's status files say of the domains it runs (/run/libvirt/DRIVER/NAME.xml,
the live XML of every running domain): each NIC, and vnetctl's metadata of its domain.
One reader (the fact `libvirt_nics`, the host's model asks it: vnet_hostnet), and one
parser of vnetctl's metadata form, which the libvirt hook uses on its domain XML too.

Runs on the managed host: Python 3.9+, standard library only.
"""

try:  # under ansible-playbook, module_utils files travel with the module
    from ansible.module_utils import vnet_facts
except ImportError:  # vnetctl's runner preloads every module_utils file
    import vnet_facts

# libvirt keeps the live XML of every running domain in /run/libvirt/DRIVER/NAME.xml:
# its <name>, its <metadata> (vnetctl's, below), per NIC (<interface>, in order) <mac
# address>, <source> (bridge, port group), host device <target dev> and <alias name>.
# grep picks those out of every file (-Z: FILE NUL MATCH); a file with no <domain
# type=...> (a network's, a filter binding's) has none. No libvirt: None
#
# vnetctl's domain metadata: elements with the prefix `vnetctl` bound to XMLNS, each leaf
# a key and its text the value, either one element per key or the children of one
# element (libvirt's advice: one top element per namespace; `virsh metadata --key
# vnetctl --uri XMLNS` writes that form):
#   <vnetctl:tier xmlns:vnetctl="https://vnetctl.dev/xmlns/1">db</vnetctl:tier>
#   <vnetctl:vm xmlns:vnetctl="https://vnetctl.dev/xmlns/1"><vnetctl:tier>db</vnetctl:tier>
#     <vnetctl:app>shop</vnetctl:app></vnetctl:vm>
# The same patterns read the hook's domain XML (metadata_of): one parser of that form.
XMLNS = "https://vnetctl.dev/xmlns/1"
METADATA_LINES = ("<vnetctl:[A-Za-z0-9_.-]+( [^>]*)?>[^<]*</vnetctl:[A-Za-z0-9_.-]+>"
                  "|xmlns:vnetctl=(\"[^\"]*\"|'[^']*')")  # fmt: skip
LIBVIRT_LINES = ("<domain type=|<name>[^<]*</name>|<interface [^>]*[^/]>|</interface>"
                 "|<mac address='[^']+'|<source [^>]*>|<target dev='[^']+'|<alias name='[^']+'|"
                 + METADATA_LINES)  # fmt: skip
NIC_FIELDS = {"<mac address=": "mac", "<target dev=": "dev", "<alias name=": "alias"}
SOURCE_FIELDS = {"bridge": "bridge", "portgroup": "port_group"}
QUOTES = {"&apos;": "'", "&quot;": '"'}


def metadata_of(matches):
    """{key: value} of vnetctl's metadata among `matches` (METADATA_LINES' matches, in
    order); {} unless vnetctl's prefix is bound to XMLNS."""
    from xml.sax.saxutils import unescape  # noqa: PLC0415 -- only where libvirt runs

    out, ours = {}, False
    for match in matches:
        at = match.find("xmlns:vnetctl=")
        if at >= 0:
            quoted = match[at + len("xmlns:vnetctl=") :]
            ours = ours or unescape(quoted[1 : quoted.index(quoted[0], 1)], QUOTES) == XMLNS
        if match.startswith("<vnetctl:"):
            key = match[len("<vnetctl:") :].split(">")[0].split(" ")[0]
            value = match.split(">", 1)[1].rsplit("</", 1)[0]
            out[key] = unescape(value, QUOTES).strip()
    return out if ours else {}


def metadata_in(xml_text):
    """vnetctl's metadata of one domain's XML (what the libvirt hook reads on stdin)."""
    import re  # noqa: PLC0415 -- only where libvirt runs

    return metadata_of([m.group(0) for m in re.finditer(METADATA_LINES, xml_text)])


def _attributes(tag):
    """{name: value} of a one-line tag's attributes, as libvirt writes them ('...')."""
    from xml.sax.saxutils import unescape  # noqa: PLC0415 -- only where libvirt runs

    parts = tag.split("'")
    return {parts[i].strip(" =").rsplit(" ", 1)[-1]: unescape(parts[i + 1], QUOTES)
            for i in range(0, len(parts) - 1, 2)}  # fmt: skip


def _nics(output):
    """[{domain, index (0 first, as `virsh domiflist`), mac, dev, alias, bridge,
    port_group, metadata (the domain's, vnetctl's form above)}] per NIC."""
    from xml.sax.saxutils import unescape  # noqa: PLC0415 -- only where libvirt runs

    files, found = {}, []
    for line in output.splitlines():
        path, sep, match = line.partition("\0")
        if sep:
            files.setdefault(path, []).append(match)
    for matches in files.values():
        domain, nic, index = None, None, 0
        metadata = metadata_of([m for m in matches if "vnetctl" in m])
        for match in matches:
            if match.startswith("<domain type="):
                domain = ""
            elif match.startswith("<name>") and domain == "":
                domain = unescape(match[len("<name>") : -len("</name>")], QUOTES)
            elif match.startswith("<interface ") and domain:
                nic = {"domain": domain, "index": index, "mac": None, "dev": None, "alias": None,
                       "bridge": None, "port_group": None, "metadata": metadata}  # fmt: skip
            elif match == "</interface>" and nic is not None:
                found.append(nic)
                nic, index = None, index + 1
            elif nic is not None and match.startswith("<source "):
                source = _attributes(match)
                nic.update({f: source[a] for a, f in SOURCE_FIELDS.items() if a in source})
            elif nic is not None and match.split("'")[0] in NIC_FIELDS:
                field, value = NIC_FIELDS[match.split("'")[0]], match.split("'")[1]
                nic[field] = unescape(value.lower() if field == "mac" else value, QUOTES)
    return sorted(found, key=lambda n: (n["domain"], n["index"]))


LIBVIRT_NICS = vnet_facts.command(
    ["grep", "-rHsoEZ", "-D", "skip", "--include=*.xml", LIBVIRT_LINES, "/run/libvirt"],
    parse=_nics, optional=True,
)  # fmt: skip
