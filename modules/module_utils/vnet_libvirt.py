"""The `virsh` writer of the registry (vnet_registry): how a libvirt network is changed.

A step is `("virsh", "COMMAND NETWORK [WORDS]")` built by virsh_step(); net-define and
net-update also carry XML (vnet_core.Step's body), which virsh reads from its stdin
(`/dev/stdin` as its file). Every call names the system daemon (`-c qemu:///system`),
whatever URI the session would pick. There is no transaction over libvirt networks:
one virsh per step, in order; a failed step stops the batch, and the task's rollback
(the module's planner, back to read()) undoes what ran.

Runs on the managed host: Python 3.9+, standard library only.
"""

try:  # under ansible-playbook, module_utils files travel with the module
    from ansible.module_utils import vnet_core
except ImportError:  # vnetctl's runner preloads every module_utils file
    import vnet_core

ModuleError = vnet_core.ModuleError
VIRSH = ["virsh", "-q", "-c", "qemu:///system"]
NO_WORDS = ((),)
UPDATES = ("add-last", "modify", "delete")
# command -> (the words it may take after the network's name, whether it reads XML);
# net-update's are VERB portgroup GROUP --live
COMMANDS = {
    "net-define": (NO_WORDS, True),
    "net-start": (NO_WORDS, False),
    "net-destroy": (NO_WORDS, False),
    "net-undefine": (NO_WORDS, False),
    "net-autostart": (((), ("--disable",)), False),
    "net-update": (None, True),
}


def virsh_form(words):
    """Why a line is not a virsh step's, or None."""
    known = COMMANDS.get(words[0])
    if known is None:
        return "it starts with %r, not one of %s" % (words[0], ", ".join(sorted(COMMANDS)))
    if len(words) < 2 or vnet_core.object_name_problem(words[1]) is not None:
        return "a virsh step names one network, a plain name, after its command"
    rest = tuple(words[2:])
    if known[0] is None:  # net-update
        named = len(rest) == 4 and vnet_core.object_name_problem(rest[2]) is None
        if not named or rest[0] not in UPDATES or rest[1::2] != ("portgroup", "--live"):
            return "virsh net-update takes VERB portgroup GROUP --live, not %r" % (rest,)
    elif rest not in known[0]:
        return "virsh %s takes none of %r after the network's name" % (words[0], list(rest))
    return None


def virsh_step(command, network, *words, xml=None):
    """The step running `virsh COMMAND NETWORK WORDS...`; `xml`: what it reads on stdin
    (net-define's network, net-update's port group), for those two only."""
    if COMMANDS.get(command, (None, False))[1] != (xml is not None):
        raise ModuleError("refusing virsh %s: it %s XML" % (
            command, "reads no" if xml is not None else "needs its"))  # fmt: skip
    return vnet_core.Step("virsh", vnet_core.line(command, network, *words), xml)


def run_virsh(steps, runner):
    """One virsh per step, in order. The XML must be of what the line names (the
    network, the port group): the line is what check mode and the results show."""
    for step in steps:
        words = step[1].split(" ")
        if not COMMANDS[words[0]][1]:
            runner(VIRSH + words)
            continue
        body = getattr(step, "body", None)
        if body is None:
            raise ModuleError("refusing virsh %s: the step carries no XML" % words[0])
        if words[0] == "net-define":
            _check_names(step, _xml_name(body, "name"), words[1])
            runner(VIRSH + ["net-define", "/dev/stdin"], stdin=body)
        else:  # virsh net-update NETWORK VERB SECTION XML --live
            _check_names(step, _xml_name(body, "portgroup"), words[4])
            runner(VIRSH + words[:4] + ["/dev/stdin"] + words[5:], stdin=body)


def _check_names(step, named, wanted):
    if named != wanted:
        raise ModuleError("refusing virsh %s: its XML names %r" % (step[1], named))


def _xml_name(text, kind):
    """The network's <name>, or the port group's name attribute."""
    from xml.etree import ElementTree  # noqa: PLC0415 -- only a play that defines one pays

    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError:
        return None
    if kind == "name":
        return root.findtext("name") if root.tag == "network" else None
    return root.get("name") if root.tag == "portgroup" else None
