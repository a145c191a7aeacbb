"""Secrets: which variables are secret, what is derived from them, and redaction in
errors, results, JSON, drift reports and the drift history."""

from __future__ import annotations

import textwrap

import pytest
from drift_samples import full_report, item
from fake_catalog import CATALOG as MODULES

from vnetctl import secrets
from vnetctl.drift import formats
from vnetctl.drift.history import History
from vnetctl.drift.report import HostState
from vnetctl.errors import InputError
from vnetctl.inventory.connection import ConnectionSpec
from vnetctl.inventory.loader import load_inventory
from vnetctl.output import json_report
from vnetctl.playbook.loader import load_playbook
from vnetctl.playbook.render import plan_playbook
from vnetctl.runner.results import RunResult, Status, TaskResult

CATALOG = {**MODULES, "debug": {"msg": {"type": "raw"}}}
PASSWORD = "S3cretPassw0rd"
INVENTORY = f"""\
all:
  hosts:
    kvm1:
      vault_password: {PASSWORD}
      uplink_name: "x{{{{ vault_password[:9] }}}}"
      shouted: "{{{{ uplink_name | upper }}}}"
      site_key: Abcd-1234
      plain: eth1
"""


@pytest.fixture(autouse=True)
def fresh_registry():
    secrets.new_run()
    yield
    secrets.new_run()


def plan(tmp_path, tasks: str, inventory: str = INVENTORY, **options):
    (tmp_path / "hosts.yml").write_text(inventory)
    book = "- hosts: all\n  tasks:\n" + textwrap.indent(textwrap.dedent(tasks), "    ")
    (tmp_path / "book.yml").write_text(book)
    inv = load_inventory(tmp_path / "hosts.yml")
    return plan_playbook(load_playbook(tmp_path / "book.yml", CATALOG), inv, CATALOG, **options)


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("ansible_password", True),
        ("ansible_ssh_pass", True),
        ("ansible_become_pass", True),
        ("vnetctl_become_password", True),
        ("db_passwd", True),
        ("api_token", True),
        ("secret", True),
        ("ssh_key_passphrase", True),
        ("Vault_Secret", True),
        ("vnetctl_secret_vars", False),
        ("bypass", False),
        ("compass", False),
        ("password_hint", False),
        ("vm_mtu", False),
    ],
)
def test_secret_names(name, secret):
    assert secrets.is_secret_name(name) is secret


def test_registry_redacts_text_through_containers_and_dataclasses():
    reg = secrets.Registry()
    reg.add({"a": [PASSWORD, "up", 9000, True, None]})
    assert PASSWORD in reg and "9000" in reg and "up" not in reg  # too short to hide
    result = TaskResult("h", "p", 0, "t", "link", Status.FAILED, f"port {PASSWORD}!")
    result.changes = [{"field": "ports", "before": [], "after": [f"x{PASSWORD}"]}]
    shown = reg.redact(result)
    assert shown.msg == "port ***!" and shown.changes[0]["after"] == ["x***"]
    assert shown.status is Status.FAILED  # a StrEnum is not text to redact
    assert reg.redact({PASSWORD: ("mtu 9000", 9000)}) == {"***": ("mtu ***", 9000)}


def test_a_password_directly_and_through_variables_is_redacted_in_validation_errors(tmp_path):
    with pytest.raises(InputError) as info:
        plan(
            tmp_path,
            """\
            - link: {name: eth1, mtu: "{{ vault_password }}"}
            - link: {name: eth1, mtu: "{{ shouted }}"}
            - link: {name: eth1, admin_state: "{{ uplink_name }}"}
            """,
        )
    message = str(info.value)
    assert "got '***' (string)" in message
    assert "'***' is not one of: up, down" in message
    for leaked in (PASSWORD, "S3cretPas", "XS3CRETPAS"):
        assert leaked not in message
    assert all(v in secrets.registry() for v in (PASSWORD, "xS3cretPas", "XS3CRETPAS"))


def test_derived_values_are_registered_as_they_are_rendered(tmp_path):
    plans = plan(
        tmp_path,
        """\
        - debug: {msg: "{{ plain }}-{{ shouted | lower }}"}
        - debug: {msg: ["{{ plain }}", "{{ vault_password | length }}{{ plain }}"]}
        - debug: {msg: "{{ plain }}"}
        """,
    )
    args = [t.args["msg"] for t in plans[0].tasks["kvm1"]]
    assert args == ["eth1-xs3cretpas", ["eth1", "14eth1"], "eth1"]
    assert all(v in secrets.registry() for v in ("eth1-xs3cretpas", "14eth1"))
    assert "eth1" not in secrets.registry()  # not derived from a secret


def test_variables_marked_secret_by_the_operator(tmp_path):
    inventory = INVENTORY + "  vars:\n    vnetctl_secret_vars: [site_key]\n"
    plan(tmp_path, '- debug: {msg: "key {{ site_key }}"}\n', inventory)
    assert "key Abcd-1234" in secrets.registry() and "Abcd-1234" in secrets.registry()
    secrets.new_run()
    plan(tmp_path, '- debug: {msg: "key {{ site_key }}"}\n', extra_vars={"vnetctl_secret_vars": ""})
    assert not secrets.registry()

    with pytest.raises(InputError, match="vnetctl_secret_vars must be a list of variable names"):
        plan(tmp_path, '- debug: {msg: "{{ plain }}"}\n', extra_vars={"vnetctl_secret_vars": 3})


def test_connection_variable_errors_are_redacted(tmp_path):
    (tmp_path / "hosts.yml").write_text(
        f"all:\n  hosts:\n    kvm1:\n      db_token: {PASSWORD}\n"
        "      ansible_port: '{{ db_token }}'\n"
    )
    with pytest.raises(InputError) as info:
        ConnectionSpec.from_host(load_inventory(tmp_path / "hosts.yml").hosts["kvm1"])
    assert str(info.value).endswith(
        "variable ansible_port: expected a port number (1-65535), got '***'"
    )


def failed_run() -> RunResult:
    secrets.registry().add(PASSWORD)
    run = RunResult(hosts=["h1", "h2"], unreachable={"h2": f"auth failed for {PASSWORD}"})
    result = TaskResult("h1", "p", 0, "t", "link", Status.FAILED, f"interface x{PASSWORD} missing")
    result.diff = {"before": {"name": None}, "after": {"name": PASSWORD}}
    result.commands = [f"link add {PASSWORD} type bridge"]
    result.data = {"facts": {"links": [{"ifname": PASSWORD}]}}
    run.results.append(secrets.redact_result(result))
    return run


def test_results_entering_the_controller_keep_raw_facts_only():
    run = failed_run()
    shown = run.results[0]
    assert shown.msg == "interface x*** missing" and shown.commands == ["link add *** type bridge"]
    assert shown.diff["after"]["name"] == "***"
    assert shown.data["facts"]["links"][0]["ifname"] == PASSWORD  # planning reads these
    document = json_report.dumps(json_report.run_document(failed_run(), playbook="b", check=True))
    assert PASSWORD not in document.replace(f'"ifname": "{PASSWORD}"', "")


def test_drift_reports_in_every_format_and_the_history_hide_secrets(tmp_path):
    secrets.registry().add(PASSWORD)
    report = full_report()
    report.hosts[1].items.append(item("h2", field="ports", declared=[PASSWORD], actual=[]))
    report.hosts[3].state, report.hosts[3].reason = HostState.FAILED, f"port {PASSWORD} absent"
    for fmt in formats.FORMATS:
        assert PASSWORD not in formats.render(report, fmt), fmt
        formats.write(report, fmt, tmp_path / f"drift.{fmt}")
        assert PASSWORD not in (tmp_path / f"drift.{fmt}").read_text()
    with History(tmp_path / "h.sqlite") as history:
        history.record(report, "check", "label")
        stored = history.items(report.run_id)
    assert ["***"] in [i.declared for i in stored]
    for path in tmp_path.glob("h.sqlite*"):
        assert PASSWORD.encode() not in path.read_bytes()
