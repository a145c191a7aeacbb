"""A new module is one file: a throwaway module, written in a temporary directory beside a
copy of module_utils, declares its own fact source and runs through the host library,
on recorded facts and in a real host process (the remote boot protocol), with no edit
under vnetctl/."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest
from host_process import host_process, records_until_done

from vnetctl.catalog import Catalog, modules_dir
from vnetctl.runner.payload import LockSpec, build_stdin, unpack

host = Catalog().host_lib()

FORWARDING = '''\
#!/usr/bin/python3
# WANT_JSON
"""IPv4 forwarding: on or off (a module written for a test)."""

from __future__ import annotations

import sys

try:  # under ansible-playbook (and Mitogen), module_utils/vnet_host.py travels along
    from ansible.module_utils.vnet_host import HOST_LIBRARY as host
except ImportError:  # vnetctl's runner preloads vnet_host
    import vnet_host as host

RESOURCE = "sysctl"
ARGUMENT_SPEC = {
    "name": {"type": "str", "choices": ["ip_forward"], "default": "ip_forward"},
    "enabled": {"type": "bool", "required": True},
}


def _flag(output):
    return int(output.strip())


FACTS = {"ip_forward": host.command(["cat", "/proc/sys/net/ipv4/ip_forward"], parse=_flag)}


def read(params, facts):
    return {"name": "ip_forward", "enabled": facts.get("ip_forward") == 1}


def desired(params, current, facts):
    return host.merge_desired(current, params)


def steps(current, desired, facts):
    return [host.sysctl_step("net.ipv4.ip_forward", 1 if desired["enabled"] else 0)]


if __name__ == "__main__":
    host.ansible_main(sys.modules[__name__])
'''


@pytest.fixture
def library(tmp_path: Path) -> Path:
    """A module directory as a new module's author has it: module_utils copied, the
    facts module, and the new file."""
    shutil.copytree(modules_dir() / "module_utils", tmp_path / "module_utils")
    shutil.copy(modules_dir() / "facts.py", tmp_path / "facts.py")
    (tmp_path / "forwarding.py").write_text(FORWARDING)
    return tmp_path


def load(path: Path):
    """The file as a host loads it (its `import vnet_host` finds the loaded library)."""
    spec = importlib.util.spec_from_file_location("vnet_module_seam_forwarding", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_new_module_plans_on_recorded_facts(library):
    module = load(library / "forwarding.py")
    off = host.Facts({"ip_forward": 0})
    result = host.execute(module, {"enabled": "yes"}, True, off)
    assert result["changed"] and not result["failed"], result
    assert result["resource"] == "sysctl ip_forward"  # its name, by default
    assert result["changes"] == [{"field": "enabled", "before": False, "after": True}]
    assert result["commands"] == ["sysctl net/ipv4/ip_forward=1"]
    on = host.Facts({"ip_forward": 1})
    assert host.execute(module, {"enabled": True}, True, on)["msg"] == "ok"
    planned = host.plan(module, {"enabled": False}, on)
    assert [" ".join(s) for s in planned["steps"]] == ["sysctl net/ipv4/ip_forward=0"]
    refused = host.execute(module, {"enabled": "maybe"}, True, on)
    assert refused["failed"] and "argument enabled: expected true or false" in refused["msg"]


class ForwardingHost:
    """A host's ip_forward as its runner sees it: `cat` reads it, `sysctl -q -p -` sets it."""

    def __init__(self, value):
        self.value, self.calls = value, []

    def __call__(self, argv, stdin=None):
        self.calls.append((argv, stdin))
        if argv[:1] == ["cat"]:
            return f"{self.value}\n"
        if argv == ["sysctl", "-q", "-p", "-"]:  # KEY=VALUE lines, as sysctl -p reads them
            key, _, value = stdin.strip().partition("=")
            if key != "net/ipv4/ip_forward" or not value.isdigit():
                raise host.ModuleError(f"sysctl failed: cannot stat /proc/sys/{key}")
            self.value = int(value)
            return ""
        raise host.ModuleError(f"{argv[0]}: not on this host")


def test_the_new_module_applies_what_check_mode_promised(library):
    """Check mode and the real run plan alike; the real run's step reaches the tool's
    writer (vnet_registry) and converges. Before the registry, a step check mode showed
    could fail here with "no batch runner for tool" (rolled back)."""
    module = load(library / "forwarding.py")
    forwarding = ForwardingHost(0)
    facts = host.Facts(runner=forwarding, modules=[module])
    checked = host.execute(module, {"enabled": True}, True, facts, runner=forwarding)
    applied = host.execute(module, {"enabled": True}, False, facts, runner=forwarding)
    assert not applied["failed"] and applied["commands"] == checked["commands"], applied
    assert forwarding.value == 1
    assert (["sysctl", "-q", "-p", "-"], "net/ipv4/ip_forward=1\n") in forwarding.calls


def run_host_process(stdin: str, timeout: float = 60) -> list[dict]:
    """Run a host's process as a host starts it, until it says it is done."""
    with host_process(stdin) as proc:
        return records_until_done(proc, timeout)


def test_the_new_module_runs_in_a_host_process_with_its_own_fact(library, tmp_path):
    """The exact stdin a host receives, built from the module directory, run by a local
    python3: the module's fact is gathered there, and `facts` reports it too."""
    now = int(Path("/proc/sys/net/ipv4/ip_forward").read_text())
    tasks = [
        {"index": 0, "module": "forwarding", "args": {"enabled": not now}},
        {"index": 1, "module": "facts", "args": {}},
    ]
    stdin = build_stdin(
        Catalog(library), tasks, check=True, lock=LockSpec(wait=1, directory=str(tmp_path))
    )
    records = run_host_process(stdin)
    results = {r["index"]: r["result"] for r in records if "result" in r}
    forwarding, facts = results[0], results[1]
    assert forwarding["changed"] and not forwarding["failed"], forwarding
    assert forwarding["commands"] == [f"sysctl net/ipv4/ip_forward={int(not now)}"]
    assert forwarding["diff"]["before"]["enabled"] is bool(now)
    assert facts["facts"]["ip_forward"] == now
    assert {"links", "addrs", "fdb", "ovs"} <= set(facts["facts"])
    assert records[-1] == {"done": True, "stopped": False}


def test_a_play_sends_the_modules_it_runs_and_facts_all_sends_every_declared_source(library):
    """`facts` in a play loads no other module (its built-in sources and those of the
    play's modules); `facts: {sources: all}`, as `vnetctl facts` asks, carries every
    module that declares FACTS. The code word is the same for every host of a play."""
    catalog = Catalog(library)
    play = [{"index": 0, "module": "facts", "args": {}}]
    every = [{"index": 0, "module": "facts", "args": {"sources": "all"}}]
    assert set(unpack(build_stdin(catalog, play, check=True).splitlines()[1])["modules"]) == {
        "facts"
    }
    sent = unpack(build_stdin(catalog, every, check=True).splitlines()[1])["modules"]
    assert {"facts", "forwarding"} <= set(sent)
    first, second = (
        build_stdin(catalog, [dict(t, args={"name": h}) for t in play], check=True)
        for h in ("h1", "h2")
    )
    assert first.splitlines()[1].split()[0] == second.splitlines()[1].split()[0]
    assert first != second
