"""What every command a vnetctl module runs must pass: the rules for names, the one
writer of command lines, and the one runner of commands.

Modules describe changes as steps `(tool, line)`; the engine feeds the lines of a run of
steps to one `ip -batch -`, `bridge -batch -` or `tc -batch -` process (or splits them
into one ovs-vsctl argv). Those parsers split a line on blanks, end it at a newline,
read `#` as the start of a comment and honour quotes and backslashes, so a name that
holds any of them would become other commands, run as root. Lines are therefore only
ever built from tokens by `line()`/`step()`, which refuse such tokens, and the engine
checks every line again (`check_line`) before any process sees it.

Runs on the managed host: Python 3.9+, standard library only. The other host library
files import this one; vnet_host re-exports what modules use.
"""

import _json  # the json package's C half: its Python half imports re and enum (~10 ms)
import os
import select
import time


class ModuleError(Exception):
    """A failure the operator can act on; its text becomes the task's `msg`."""


# A command that takes longer is killed and fails the task: a hung `ip` or ovs-vsctl
# must not hold a host's play (and its lock) forever.
RUN_TIMEOUT_S = 120

# `vnetctl run -vvv`: a list the runner appends each command it starts to (argv and the
# lines of its stdin), taken by the boot program per task; None: nothing is recorded
TRACE = None


def run(argv, stdin=None, timeout=RUN_TIMEOUT_S):
    """Run a command, return its stdout; a non-zero exit, or no exit within `timeout`
    seconds (the command is then killed), raises ModuleError. The one way the host
    library runs a command (to gather facts or to apply steps)."""
    code, out, err = run_status(argv, stdin, timeout)
    if code != 0:
        detail = (err or out).strip()
        raise ModuleError("%s failed: %s" % (" ".join(argv[:3]), detail))
    return out


def run_status(argv, stdin=None, timeout=RUN_TIMEOUT_S):
    """(exit status, stdout, stderr) of a command; no exit within `timeout` seconds
    kills it (ModuleError). posix_spawn and select: the subprocess module would cost
    every host's play its import (~3 ms)."""
    if TRACE is not None:
        TRACE.append({"argv": " ".join(argv), "stdin": (stdin or "").splitlines()})
    out_file = _output_file()
    to_child, from_err = os.pipe(), os.pipe()  # all close-on-exec
    from_out = os.pipe() if out_file is None else (None, out_file)
    actions = [(os.POSIX_SPAWN_DUP2, to_child[0], 0), (os.POSIX_SPAWN_DUP2, from_out[1], 1),
               (os.POSIX_SPAWN_DUP2, from_err[1], 2)]  # fmt: skip
    try:
        pid = os.posix_spawnp(argv[0], argv, os.environ, file_actions=actions)
    except OSError as exc:
        for fd in (*to_child, *from_err, *from_out):
            if fd is not None:
                os.close(fd)
        if isinstance(exc, FileNotFoundError):
            raise ModuleError("command not found on host: %s" % argv[0]) from None
        raise ModuleError("cannot run %s: %s" % (argv[0], exc.strerror)) from None
    for fd in (to_child[0], from_err[1]) + ((from_out[1],) if out_file is None else ()):
        os.close(fd)
    try:
        out, err = _exchange(pid, to_child[1], from_out[0], from_err[0], stdin, timeout, argv)
        status = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        return status, (out if out_file is None else _read_whole(out_file)), err
    finally:
        if out_file is not None:
            os.close(out_file)


def _output_file():
    """Where a command's stdout goes: a file in memory, read once the command has ended
    (`ip -j` writes once per device: a pipe woke this process once per device, ~1 ms of
    a play at 160 devices); None where the kernel has none: a pipe, read as it comes."""
    try:
        return os.memfd_create("vnetctl-stdout")  # close-on-exec here; the child's fd 1 not
    except (AttributeError, OSError):
        return None


def _read_whole(fd):
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks).decode("utf-8", "replace")
        chunks.append(chunk)


def _exchange(pid, to_child, from_out, from_err, stdin, timeout, argv):
    """Feed stdin, read stdout (None: it goes to a file) and stderr to their ends, within
    `timeout`."""
    data = (stdin or "").encode()
    reading = [fd for fd in (from_out, from_err) if fd is not None]
    parts = {fd: [] for fd in reading}
    writing = [to_child] if data else []
    if not data:
        os.close(to_child)
    deadline = time.monotonic() + timeout
    while reading or writing:
        left = deadline - time.monotonic()
        if left <= 0:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            for fd in reading + writing:
                os.close(fd)
            raise ModuleError(
                "%s did not finish within %s s and was killed" % (" ".join(argv[:3]), timeout)
            )
        readable, writable, _ = select.select(reading, writing, [], left)
        if writable:
            try:
                data = data[os.write(to_child, data[:65536]) :]
            except BrokenPipeError:
                data = b""  # it exited without reading all: its status says why
            if not data:
                os.close(to_child)
                writing = []
        for fd in readable:
            chunk = os.read(fd, 65536)
            if chunk:
                parts[fd].append(chunk)
            else:
                os.close(fd)
                reading.remove(fd)
    return tuple(b"".join(parts.get(fd, ())).decode("utf-8", "replace")
                 for fd in (from_out, from_err))  # fmt: skip


# ---- JSON, without the json package's import cost -------------------------------------


class _Decoder:
    """What _json.make_scanner reads from a decoder object."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {"NaN": float("nan"), "Infinity": float("inf"),
                      "-Infinity": float("-inf")}.__getitem__  # fmt: skip
    memo = None


_SCAN = _json.make_scanner(_Decoder())
# markers, default, encoder, indent, key_separator, item_separator, sort_keys, skipkeys,
# allow_nan: json.dumps(obj, default=str, separators=(", ", ": ")) in one C call
_ENCODE = _json.make_encoder(None, str, _json.encode_basestring_ascii, None, ": ", ", ",
                             False, False, True)  # fmt: skip


def loads(text):
    """json.loads for one document (what `ip -j` and ovs-vsctl print)."""
    text = text.strip()
    try:
        value, end = _SCAN(text, 0)
    except (StopIteration, SystemError):  # SystemError: the C scanner on a cut document
        raise ValueError("not JSON: %r" % text[:80]) from None
    if end != len(text):
        raise ValueError("not JSON: extra data after position %d" % end)
    return value


def dumps(value):
    """json.dumps(value, default=str)."""
    return "".join(_ENCODE(value, 0))


# ---- names -----------------------------------------------------------------------

IFNAME_MAX_BYTES = 15  # IFNAMSIZ 16 with the NUL (include/uapi/linux/if.h)
IFNAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")

# Words iproute2 reads as keywords where it expects a device (ip/iplink.c iplink_parse
# and the `ip link` commands, ip-link(8), `bridge fdb`/`bridge link`): an interface with
# such a name cannot be named on an `ip` or `bridge` command line without ambiguity.
IPROUTE2_KEYWORDS = frozenset((
    "add", "addrgenmode", "address", "afstats", "alias", "all", "allmulticast", "altname",
    "any", "arp", "broadcast", "brd", "carrier", "change", "default", "del", "delete", "dev",
    "down", "dst", "dynamic", "gro_ipv4_max_size", "gro_max_size", "group",
    "gso_ipv4_max_size", "gso_max_segs", "gso_max_size", "help", "index", "link", "link-netns",
    "link-netnsid", "list", "lst", "macaddr", "master", "max_gro_size", "max_gso_segs",
    "max_gso_size", "mode", "mtu", "multicast", "name", "netns", "nomaster", "novrf",
    "numrxqueues", "numtxqueues", "parentdev", "permanent", "port", "promisc", "property",
    "protodown", "protodown_reason", "qlen", "replace", "router", "self", "set", "show",
    "state", "static", "trailers", "txqlen", "txqueuelen", "type", "up", "vf", "via", "vlan",
    "vni", "vrf", "xdp", "xdpdrv", "xdpgeneric", "xdpoffload", "xstats",
))  # fmt: skip

# The marker a mesh leaves on what it owns (VXLAN device alias, OVS external_ids): one
# token, no blanks or quotes, and never read as an option.
MESH_NAME_MAX = 64


def ifname_problem(name):
    """Why `name` cannot be an interface name here, or None when it can.

    The kernel's rules (net/core/dev.c dev_valid_name): 1..15 bytes, no '/', ':',
    whitespace or NUL, not '.' or '..'. Stricter for safety: ASCII letters, digits,
    '.', '_' and '-' only (no '#', quotes or backslashes, which iproute2's batch parser
    interprets, no '%', which the kernel expands to a number), no leading '-' (an
    option), and none of iproute2's keywords."""
    if not isinstance(name, str):
        return "it is not text but %s" % type(name).__name__
    if not name:
        return "it is empty"
    if "\n" in name:
        return "it contains a newline"
    if any(c.isspace() for c in name):
        return "it contains whitespace"
    for char, why in (
        ("\x00", "a NUL byte"),
        ("/", "'/' (the kernel refuses it)"),
        (":", "':' (the kernel refuses it)"),
        ("#", "'#' (iproute2 reads the rest of the line as a comment)"),
        ('"', "a quote"),
        ("'", "a quote"),
        ("\\", "a backslash"),
    ):
        if char in name:
            return "it contains " + why
    if name in (".", ".."):
        return "the kernel refuses '.' and '..'"
    size = len(name.encode("utf-8"))
    if size > IFNAME_MAX_BYTES:
        return "it is %d bytes long; the kernel allows at most %d" % (size, IFNAME_MAX_BYTES)
    bad = next((c for c in name if c not in IFNAME_CHARS), None)
    if bad is not None:
        return "it contains %r: only ASCII letters, digits, '.', '_' and '-' are accepted" % bad
    if name.startswith("-"):
        return "it starts with '-', which tools read as an option"
    if name in IPROUTE2_KEYWORDS:
        return "%r is an iproute2 keyword (ip link and bridge would read it as one)" % name
    return None


def _word_name(name):
    """1 to 64 ASCII letters, digits, '.', '_' or '-', not starting with '.' or '-': one
    word for every tool (never an option, never a line break), printable as it is."""
    valid = isinstance(name, str) and 0 < len(name) <= MESH_NAME_MAX
    return valid and name[0] not in ".-" and all(c in IFNAME_CHARS for c in name)


def mesh_name_problem(name):
    if not _word_name(name):
        return (
            "a mesh name is 1 to 64 ASCII letters, digits, '.', '_' or '-', not starting "
            "with '.' or '-' (it marks what the mesh owns on every host)"
        )
    return None


def object_name_problem(name):
    """A name that is not an interface's (a port group, an OVS mirror): it reaches
    commands (`ovs-vsctl get mirror NAME`) and every output."""
    if not _word_name(name):
        return (
            "a name is 1 to 64 ASCII letters, digits, '.', '_' or '-', not starting with "
            "'.' or '-' (tools would read '-x' as an option)"
        )
    return None


# argument spec types that are names: {"type": "ifname"}, {"type": "list", "elements":
# "ifname"}; the controller's validator uses the same table
NAME_TYPES = {
    "ifname": ("interface name", ifname_problem),
    "meshname": ("mesh name", mesh_name_problem),
    "objname": ("name", object_name_problem),
}


def name_problem(kind, value, types=NAME_TYPES):
    """The sentence an argument of a name type (of `types`) gets when `value` breaks its
    rule."""
    what, problem_of = types[kind]
    problem = problem_of(value)
    return None if problem is None else "%r is not a valid %s: %s" % (value, what, problem)


def check_ifname(name, what="interface name"):
    problem = ifname_problem(name)
    if problem is not None:
        raise ModuleError("%r is not a valid %s: %s" % (name, what, problem))
    return name


def ip_value(parse, value):
    """`parse(value)` for an address or network a playbook declares (`parse`: one of
    ipaddress's ip_address, ip_interface, ip_network, or a function calling one);
    ValueError for what ipaddress would take but no command may: a scope id. ipaddress
    reads `fe80::1%eth0` with any text after the '%' but another '%' (blanks and ';'
    included), no tool a module runs takes one (ip, nft, tc, ovs-vsctl), and written
    into a command it would carry other words in."""
    text = value if isinstance(value, str) else str(value)
    if "%" in text:
        raise ValueError("%r: a scope id (%%...) is not accepted; write the address alone" % text)
    if any(c.isspace() or not c.isprintable() for c in text):
        raise ValueError("%r holds whitespace or a control character" % text)
    return parse(text)


# ---- command lines ---------------------------------------------------------------

_UNSAFE = (
    ("\n", "a newline"),
    ("\r", "a carriage return"),
    ("\x00", "a NUL byte"),
    ("#", "'#'"),
    ('"', "a quote"),
    ("'", "a quote"),
    ("\\", "a backslash"),
)


def token_problem(token):
    """Why `token` cannot be one word of a batch line, or None."""
    if isinstance(token, bool) or not isinstance(token, (str, int)):
        return "%r is a %s, not text or a number" % (token, type(token).__name__)
    text = str(token)
    if not text:
        return "a token is empty"
    for char, why in _UNSAFE:
        if char in text:
            return "%r contains %s" % (text, why)
    if any(c.isspace() or not c.isprintable() for c in text):
        return "%r contains whitespace or a control character" % text
    return None


def line(*tokens):
    """The one writer of batch lines: tokens joined by single spaces, each refused if
    ip/bridge/tc's batch parsers or ovs-vsctl could read it as more than one word."""
    for token in tokens:
        problem = token_problem(token)
        if problem is not None:
            raise ModuleError("refusing to build a command from %r: %s" % (tokens, problem))
    return " ".join(str(t) for t in tokens)


def step(tool, *tokens):
    """A step `(tool, line)`, its line written by line()."""
    return (tool, line(*tokens))


class Step(tuple):
    """A step that also carries a document, `body`: a file's content (`file`, written
    with `mode`), a libvirt network's XML (`virsh`); the writer of its tool feeds it to
    the command."""

    def __new__(cls, tool, line, body=None, mode=0o644):
        step = tuple.__new__(cls, (tool, line))
        step.body, step.mode = body, mode
        return step


def check_line(text):
    """A line as line() writes it, or ModuleError: checked again before any process
    reads it, whoever built it."""
    if not isinstance(text, str):
        raise ModuleError("refusing to run %r: a command line must be text" % (text,))
    for token in text.split(" "):
        problem = token_problem(token)
        if problem is not None:
            raise ModuleError("refusing to run %r: %s" % (text, problem))
    return text
