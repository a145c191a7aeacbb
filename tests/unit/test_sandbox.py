"""Templates are sandboxed: no Python internals, no in-place changes; native types kept."""

from __future__ import annotations

import textwrap

import pytest
from fake_catalog import CATALOG as MODULES
from jinja2.sandbox import ImmutableSandboxedEnvironment

from vnetctl.errors import InputError
from vnetctl.inventory.connection import ConnectionSpec
from vnetctl.inventory.loader import load_inventory
from vnetctl.playbook.loader import load_playbook
from vnetctl.playbook.render import plan_playbook
from vnetctl.templar import Templar, TemplateFailure

CATALOG = {**MODULES, "debug": {"msg": {"type": "raw"}}}


def payloads(marker: str) -> list[str]:
    """Attribute walks to the os module, to internals, and an in-place change."""
    return [
        "{{ cycler.__init__.__globals__.os.popen('touch " + marker + "').read() }}",
        "{{ ''.__class__.__mro__ }}",
        "{{ lipsum.__globals__ }}",
        "{{ ports.append(1) }}",
        "{{ {}.update(a=1) }}",
        '{{ "{0.__class__}".format(ports) }}',
    ]


def test_the_environment_is_jinjas_immutable_sandbox():
    assert isinstance(Templar().env, ImmutableSandboxedEnvironment)


@pytest.mark.parametrize("source", payloads("/nonexistent/x"))
def test_attribute_walks_and_mutations_are_refused(source):
    with pytest.raises(TemplateFailure) as info:
        Templar().render(source, {"ports": [1, 2]})
    assert "unsafe template refused" in str(info.value)
    assert "is unsafe" in str(info.value)


def test_a_refused_payload_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    with pytest.raises(TemplateFailure):
        Templar().render(payloads(str(marker))[0], {})
    assert not marker.exists()


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ mtu }}", 9000),
        ("{{ ports }}", ["eth1", "eth2"]),
        ("{{ ports + ['eth3'] }}", ["eth1", "eth2", "eth3"]),
        ("{{ {'a': mtu} }}", {"a": 9000}),
        ("{{ false }}", False),
        ("{{ name }}", "010"),
        ("br-{{ vlan }}", "br-100"),
        ("{{ ports | join(',') }}", "eth1,eth2"),
        ("{{ '{}-{}'.format(name, vlan) }}", "010-100"),
        ("{{ hostvars_like.kvm1.mtu }}", 1500),
        ("{{ range(3) | list }}", [0, 1, 2]),
    ],
)
def test_native_types_still_work_in_the_sandbox(source, expected):
    variables = {
        "mtu": 9000,
        "ports": ["eth1", "eth2"],
        "name": "010",
        "vlan": 100,
        "hostvars_like": {"kvm1": {"mtu": 1500}},
    }
    result = Templar().render(source, variables)
    assert result == expected and type(result) is type(expected)


def plan_error(tmp_path, inventory: str, playbook: str, **options) -> str:
    (tmp_path / "hosts.yml").write_text(textwrap.dedent(inventory))
    (tmp_path / "book.yml").write_text(textwrap.dedent(playbook))
    inv = load_inventory(tmp_path / "hosts.yml")
    with pytest.raises(InputError) as info:
        plan_playbook(load_playbook(tmp_path / "book.yml", CATALOG), inv, CATALOG, **options)
    return str(info.value).replace(str(tmp_path) + "/", "")


BOOK = """\
- hosts: all
  tasks:
    - name: show
      debug: {msg: "{{ evil }}"}
"""


@pytest.mark.parametrize("index", range(6))
def test_inventory_variable_payload_names_variable_file_line_and_argument(tmp_path, index):
    payload = payloads(str(tmp_path / "pwned"))[index]
    inventory = f"""\
    all:
      hosts:
        kvm1:
          ports: [1]
          evil: {payload!r}
    """
    message = plan_error(tmp_path, inventory, BOOK)
    assert message.startswith("book.yml:4: play 'all' task 'show': host kvm1: argument 'msg'")
    assert "unsafe template refused" in message
    assert "via variable 'evil' at hosts.yml:5" in message
    assert not (tmp_path / "pwned").exists()


def test_payload_in_an_argument_when_or_extra_var_is_refused(tmp_path):
    inventory = "all:\n  hosts:\n    kvm1: {ports: [1]}\n"
    payload = payloads(str(tmp_path / "pwned"))[0]
    in_arg = BOOK.replace("{{ evil }}", payload.replace('"', "'"))
    assert "argument 'msg': unsafe template refused" in plan_error(tmp_path, inventory, in_arg)
    in_when = BOOK + "      when: ports.append(2) is none\n"
    message = plan_error(tmp_path, inventory, in_when)
    assert message.startswith("book.yml:5:") and "when: unsafe template refused" in message
    message = plan_error(tmp_path, inventory, BOOK, extra_vars={"evil": payload})
    assert "unsafe template refused" in message and "via variable 'evil' at -e" in message
    assert not (tmp_path / "pwned").exists()


def test_connection_variable_payload_is_refused_before_any_connection(tmp_path):
    marker = tmp_path / "pwned"
    (tmp_path / "hosts.yml").write_text(
        "all:\n  hosts:\n    kvm1:\n      ansible_host: '{{ mgmt }}'\n"
        f"      mgmt: {payloads(str(marker))[0]!r}\n"
    )
    host = load_inventory(tmp_path / "hosts.yml").hosts["kvm1"]
    with pytest.raises(InputError) as info:
        ConnectionSpec.from_host(host)
    message = str(info.value)
    assert "hosts.yml:4: host kvm1: variable ansible_host: unsafe template refused" in message
    assert "via variable 'mgmt'" in message
    assert not marker.exists()
