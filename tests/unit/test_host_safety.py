"""The host library's defences: interface and mesh names, the one writer of batch lines,
the check every line passes before a process reads it, command timeouts, and honest
rollbacks."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from vnetctl.catalog import Catalog

CATALOG = Catalog()
host = CATALOG.host_lib()
INJECTION = "brz type bridge\nnetns add x\nnetns exec x /bin/sh -c 'id > /tmp/f'"


@pytest.mark.parametrize(
    "name", ["eth0", "br-vm", "vlan.100", "a", "bond0_1", "100", "abcdefghijklmno"]
)
def test_names_the_kernel_and_iproute2_read_as_one_device_are_accepted(name):
    assert host.ifname_problem(name) is None


@pytest.mark.parametrize(
    ("name", "why"),
    [
        (INJECTION, "it contains a newline"),
        ("br x", "it contains whitespace"),
        ("br\tx", "it contains whitespace"),
        ("", "it is empty"),
        ("-v", "it starts with '-'"),
        ("help", "'help' is an iproute2 keyword"),
        ("dev", "'dev' is an iproute2 keyword"),
        ("nomaster", "'nomaster' is an iproute2 keyword"),
        ("brü", "it contains 'ü': only ASCII letters"),
        ("br#x", "'#' (iproute2 reads the rest of the line as a comment)"),
        ("br'x", "a quote"),
        ('br"x', "a quote"),
        ("br\\x", "a backslash"),
        ("br\x00x", "a NUL byte"),
        ("a/b", "'/' (the kernel refuses it)"),
        ("a:b", "':' (the kernel refuses it)"),
        (".", "the kernel refuses '.' and '..'"),
        ("..", "the kernel refuses '.' and '..'"),
        ("abcdefghijklmnop", "it is 16 bytes long; the kernel allows at most 15"),
        ("éééééééé", "it is 16 bytes long"),  # 8 characters, 16 bytes in UTF-8
        ("br%d", "it contains '%'"),  # the kernel would pick a number for it
        (7, "it is not text but int"),
    ],
)
def test_names_that_are_not_one_safe_device_name_are_refused(name, why):
    assert why in host.ifname_problem(name)
    with pytest.raises(host.ModuleError, match="is not a valid interface name"):
        host.check_ifname(name)


def test_mesh_names_are_one_plain_token():
    assert host.mesh_name_problem("tenants-1.a_b") is None
    for bad in ("", "a b", 'ov"x', "ov'x", "-x", ".x", "ü", "a:b", "x" * 65):
        assert host.mesh_name_problem(bad), bad


@pytest.mark.parametrize(
    "token",
    ["a\nb", "a#b", "a'b", 'a"b', "a\\b", "a\x00b", "a b", "a\tb", "a\rb", "", True, None, 1.5],
)
def test_the_line_writer_refuses_tokens_a_batch_parser_would_split(token):
    with pytest.raises(host.ModuleError, match="refusing to build a command"):
        host.line("link", "set", "dev", token, "up")


def test_the_line_writer_joins_words_and_numbers():
    assert host.step("ip", "link", "set", "dev", "eth1", "mtu", 9000) == (
        "ip",
        "link set dev eth1 mtu 9000",
    )


@pytest.mark.parametrize(
    "text", ["link add name x type bridge\nnetns add y", "link  set dev x up", "link set x up "]
)
def test_check_line_refuses_what_the_writer_cannot_produce(text):
    with pytest.raises(host.ModuleError, match="refusing to run"):
        host.check_line(text)


class Recorder:
    def __init__(self):
        self.calls = []

    def __call__(self, argv, stdin=None):
        self.calls.append((argv, stdin))
        return ""


def test_apply_steps_checks_every_line_before_any_process_starts():
    runner = Recorder()
    steps = [
        ("ip", "link add name br0 type bridge"),
        ("bridge", "fdb append 00:00:00:00:00:00 dev vxlan1 dst 10.0.0.2"),
        ("ip", "link add name " + INJECTION),  # a later batch: still nothing runs
    ]
    with pytest.raises(host.ModuleError, match="contains a newline"):
        host.apply_steps(steps, runner)
    assert runner.calls == []
    with pytest.raises(host.ModuleError, match="no writer for tool 'sh'"):
        host.apply_steps([("ip", "link set dev a up"), ("sh", "id")], runner)
    assert runner.calls == []


def test_apply_steps_feeds_one_process_per_batch_and_ovs_argv_word_by_word():
    runner = Recorder()
    host.apply_steps(
        [
            ("ip", "link set dev a up"),
            ("ip", "link set dev b up"),
            ("ovs-vsctl", "--may-exist add-br br-x"),
            ("ovs-vsctl", "set port p protected=true"),
        ],
        runner,
    )
    assert runner.calls[0] == (["ip", "-batch", "-"], "link set dev a up\nlink set dev b up\n")
    argv, stdin = runner.calls[1]
    assert stdin is None and argv[-9:] == [
        "--", "--may-exist", "add-br", "br-x", "--", "set", "port", "p", "protected=true",
    ]  # fmt: skip


def test_a_command_that_hangs_is_killed_and_named():
    started = time.monotonic()
    with pytest.raises(host.ModuleError) as err:
        host.run(["sleep", "30"], timeout=0.3)
    assert time.monotonic() - started < 10
    assert str(err.value) == "sleep 30 did not finish within 0.3 s and was killed"
    assert host.RUN_TIMEOUT_S == 120  # the default for every module command


def test_execute_checks_names_whoever_calls_it():
    """The host library's execute is an entry point too: a module called directly with a
    bad name fails before anything is read or run."""
    module = CATALOG.load("linux_bridge")
    runner = Recorder()
    facts = host.Facts(runner=runner)
    for name in ("-v", "help", "brü", "br#x", "abcdefghijklmnop", INJECTION):
        result = host.execute(module, {"name": name}, False, facts, runner=runner)
        assert result["failed"] and "is not a valid interface name" in result["msg"], name
    mesh = CATALOG.load("vxlan_mesh")
    bad_segment = {"name": "m", "local": "10.0.0.1", "segments": [{"vni": 5, "bridge": "b\nx"}]}
    result = host.execute(mesh, bad_segment, False, facts, runner=runner)
    assert result["failed"] and "segments[0].bridge" in result["msg"]
    assert runner.calls == []


class Counter:
    """A resource `value`; `ip` lines "link N" set it, and one line can be made to fail."""

    def __init__(self, fail_on=()):
        self.value, self.fail_on = 1, set(fail_on)

    def run(self, argv, stdin=None):
        for text in stdin.splitlines():
            if text in self.fail_on:
                raise host.ModuleError("ip -batch - failed: " + text)
            self.value = int(text.split()[1])
        return ""

    def module(self, steps):
        return SimpleNamespace(
            read=lambda params, facts: {"value": self.value},
            desired=lambda params, current, facts: {"value": params["value"]},
            steps=steps,
        )


FACTS = SimpleNamespace(refresh=lambda: None)


def test_a_task_that_does_not_converge_is_rolled_back():
    fake = Counter()
    # the planner is wrong going forward (sets 3 for 2), right going back
    module = fake.module(lambda c, d, f: [("ip", f"link {3 if d['value'] == 2 else 1}")])
    result = host.execute(module, {"value": 2}, False, FACTS, runner=fake.run)
    assert result["failed"]
    assert result["msg"] == "did not converge: value is 3, wanted 2 (rolled back)"
    assert fake.value == 1


def test_a_rollback_that_cannot_restore_says_what_differs_and_fails():
    fake = Counter(fail_on={"link 1"})  # the way back is refused
    module = fake.module(lambda c, d, f: [("ip", f"link {d['value']}"), ("ip", "link 102")])
    fake.fail_on.add("link 102")
    result = host.execute(module, {"value": 2}, False, FACTS, runner=fake.run)
    assert result["failed"] and "(rolled back)" not in result["msg"]
    assert result["msg"].startswith("ip -batch - failed: link 102; rollback incomplete: ")
    assert "value is 2, was 1 (rollback failed: ip -batch - failed: link 1)" in result["msg"]


def test_rolled_back_is_reported_only_when_the_state_reads_as_before():
    fake = Counter(fail_on={"link 102"})
    module = fake.module(lambda c, d, f: [("ip", f"link {d['value']}"), ("ip", "link 102")])
    result = host.execute(module, {"value": 2}, False, FACTS, runner=fake.run)
    # the rollback's own batch fails at "link 102" too, but only after "link 1": equal
    assert result["msg"] == "ip -batch - failed: link 102 (rolled back)" and fake.value == 1


def test_every_difference_compares_both_sides_lists_as_sets():
    before = {"state": "absent", "ports": ["a", "b"], "links": {"a": {"up": False}}}
    now = {"state": "absent", "ports": ["b", "a"], "links": {"a": {"up": True}}, "x": 1}
    assert host.diff_fields(now, before) == [
        {"field": "links.a.up", "before": True, "after": False}
    ]  # unset in `before` as a target: kept
    assert host.diff_fields(before, now, every=True) == [
        {"field": "links.a.up", "before": False, "after": True},
        {"field": "x", "before": None, "after": 1},
    ]
