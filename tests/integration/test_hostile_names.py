"""Names that would be commands: refused on the controller (exit 1, file:line, no host
touched) and, when a module runs without the controller, on the host; and a line that
would be more than one command never reaches `ip -batch`. Real sshd, real kernel."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from vnetctl.cli.main import main
from vnetctl.lab import host_exec

pytestmark = pytest.mark.lab

MODULES = Path(__file__).parents[2] / "modules"
BAD_NAMES = ["-v", "help", "brü", "br#x", "abcdefghijklmnop"]  # the last: 16 bytes


@pytest.fixture
def payload(lab3):
    """The issue's injection, with a netns and a file of this run's own: if it ran, they
    exist on the host (its /run) and on this machine (/tmp is not the host's own)."""
    token = uuid.uuid4().hex[:8]
    netns, marker = f"vnx{token}", Path(f"/tmp/vnetctl-{lab3.name}-injected-{token}")
    text = f"brz type bridge\nnetns add {netns}\nnetns exec {netns} /bin/sh -c 'id > {marker}'"
    yield text, netns, marker
    host = lab3.host_names[0]
    if netns in host_exec(lab3.name, host, ["ip", "netns", "list"]).stdout:
        host_exec(lab3.name, host, ["ip", "netns", "del", netns])
    marker.unlink(missing_ok=True)


def untouched(lab, host: str, netns: str, marker: Path) -> None:
    names = {link["ifname"] for link in json.loads(ip_json(lab, host, "link"))}
    assert names == {"lo", "eth0", "eth1", "eth2"}, names
    assert netns not in host_exec(lab.name, host, ["ip", "netns", "list"]).stdout
    assert not marker.exists()


def ip_json(lab, host: str, what: str) -> str:
    return host_exec(lab.name, host, ["ip", "-j", what, "show"]).stdout


def run_book(tmp_path: Path, lab, tasks: list[str], capsys) -> tuple[int, str]:
    """`vnetctl run` of a playbook whose tasks (flow-style YAML, one a line) start at line 3."""
    book = tmp_path / "book.yml"
    book.write_text("- hosts: all\n  tasks:\n" + "".join(f"    - {t}\n" for t in tasks))
    code = main(["run", str(book), "-i", str(lab.inventory_path), "--limit", lab.host_names[0]])
    return code, capsys.readouterr().err


def quoted(name: str) -> str:
    return json.dumps(name)  # a JSON string is a YAML double-quoted scalar


def test_the_issues_injection_is_refused_before_any_host_is_touched(
    lab3, fresh_hosts, payload, capsys, tmp_path
):
    text, netns, marker = payload
    host = lab3.host_names[0]
    bridge = f"linux_bridge: {{name: {quoted(text)}, ports: [eth1]}}"
    segment = f"{{vni: 100, bridge: {quoted(text.replace('brz', 'brv'))}}}"
    mesh = f"vxlan_mesh: {{name: inj, vtep_interface: eth0, segments: [{segment}]}}"
    for task in (bridge, mesh):
        code, err = run_book(tmp_path, lab3, [task], capsys)
        assert code == 1, err
        assert f"{tmp_path / 'book.yml'}:3:" in err and "it contains a newline" in err
    untouched(lab3, host, netns, marker)


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_names_are_refused_on_the_controller_with_file_and_line(
    lab3, fresh_hosts, capsys, tmp_path, name
):
    code, err = run_book(tmp_path, lab3, [f"linux_bridge: {{name: {quoted(name)}}}"], capsys)
    assert code == 1
    assert f"{tmp_path / 'book.yml'}:3:" in err and "is not a valid interface name" in err
    tasks = [
        "link: {name: eth1, mtu: 1500}",
        f"linux_bridge: {{name: br0, ports: [{quoted(name)}]}}",
    ]
    code, err = run_book(tmp_path, lab3, tasks, capsys)
    assert code == 1 and f"{tmp_path / 'book.yml'}:4:" in err
    assert "is not a valid interface name" in err


def want_json(lab, host: str, module: str, args: dict, tmp_path: Path) -> dict:
    """The module file run on the host through its own entry point, as ansible-playbook
    runs it (WANT_JSON: the arguments in a file), without vnetctl's controller."""
    args_file = tmp_path / f"args-{uuid.uuid4().hex[:8]}.json"
    args_file.write_text(json.dumps(args))
    argv = ["env", f"PYTHONPATH={MODULES / 'module_utils'}", "python3"]
    proc = host_exec(lab.name, host, [*argv, str(MODULES / f"{module}.py"), str(args_file)])
    return json.loads(proc.stdout)


def test_a_module_run_without_the_controller_refuses_them_on_the_host(
    lab3, fresh_hosts, payload, tmp_path
):
    text, netns, marker = payload
    host = lab3.host_names[0]
    for name in [*BAD_NAMES, text]:
        result = want_json(lab3, host, "linux_bridge", {"name": name}, tmp_path)
        assert result["failed"] and "is not a valid interface name" in result["msg"], name
    mesh = {"name": "inj", "local": "10.0.0.1", "segments": [{"vni": 100, "bridge": text}]}
    result = want_json(lab3, host, "vxlan_mesh", mesh, tmp_path)
    assert result["failed"] and "argument segments[0].bridge" in result["msg"]
    untouched(lab3, host, netns, marker)


def test_a_line_that_is_more_than_one_command_never_reaches_ip(
    lab3, fresh_hosts, payload, tmp_path
):
    """Defence in depth: whatever a future module builds, apply_steps checks every line
    before any batch process starts."""
    text, netns, marker = payload
    host = lab3.host_names[0]
    script = tmp_path / "apply.py"
    script.write_text(
        "import sys, vnet_host\n"
        "steps = [('ip', 'link add name brok type bridge'),\n"
        "         ('ip', 'link add name ' + sys.argv[1])]\n"
        "try:\n"
        "    vnet_host.apply_steps(steps)\n"
        "except vnet_host.ModuleError as exc:\n"
        "    print(exc)\n"
    )  # fmt: skip
    argv = ["env", f"PYTHONPATH={MODULES / 'module_utils'}", "python3", str(script), text]
    out = host_exec(lab3.name, host, argv).stdout
    assert out.startswith("refusing to run") and "contains a newline" in out
    untouched(lab3, host, netns, marker)  # not even the first, harmless line ran
