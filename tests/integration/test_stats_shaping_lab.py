"""`vnetctl stats` reads a shaped uplink's classes by the names its playbook declares: a
VM's UDP beyond the `storage` class's limit, bridged out of the host's eth1, makes that
class's drops and overlimits rise while the other class drops nothing; with the
playbook, only what it declares is read (its host, its ports, its classes), without
one everything present, the classes by their ids."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from tests.integration.shaped_vm import LIMIT, shaping_playbook, udp_load, vm_behind
from tests.labhosts import own_lab
from vnetctl.cli.main import main

pytestmark = pytest.mark.lab
SCHEMA = Path(__file__).parents[2] / "vnetctl" / "output" / "schema" / "stats.schema.json"
SECONDS = 3


def stats(capsys, *args: str) -> dict:
    capsys.readouterr()
    code = main(["stats", *args, "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    jsonschema.validate(doc, json.loads(SCHEMA.read_text()))
    assert code == 0, doc["errors"]
    return doc


def test_a_class_beyond_its_limit_drops_and_is_named_as_declared(lab_required, tmp_path, capsys):
    with own_lab("stc", tmp_path / "lab", hosts=2) as lab:
        inventory, (host, other) = str(lab.inventory_path), lab.host_names[:2]
        book = str(shaping_playbook(tmp_path / "shaping.yml", host))
        assert main(["run", book, "-i", inventory]) == 0
        with vm_behind(lab, host, other) as vm:
            before = stats(capsys, "-i", inventory, book)
            assert set(before["hosts"]) == {host}  # the play's hosts only
            mine = before["hosts"][host]
            assert set(mine["ports"]) == {"eth1"} and set(mine["tc_classes"]) == {"eth1"}
            assert set(mine["tc_classes"]["eth1"]) == {"storage", "vm"}
            sent = udp_load(vm, lab.host(other).namespace, 5 * LIMIT, SECONDS)
            after = stats(capsys, "-i", inventory, book)["hosts"][host]["tc_classes"]["eth1"]
            everything = stats(capsys, "-i", inventory)
        old = mine["tc_classes"]["eth1"]
        storage, vm_class = after["storage"], after["vm"]
        print(f"\nMEASURED storage under {5 * LIMIT} Mbit/s of UDP for {SECONDS}s: "
              f"{storage['drops'] - old['storage']['drops']} drops, "
              f"{storage['overlimits'] - old['storage']['overlimits']} overlimits, "
              f"iperf3 lost {sent['lost_percent']:.0f} %")  # fmt: skip
        assert storage["drops"] - old["storage"]["drops"] > 100
        assert storage["overlimits"] > old["storage"]["overlimits"]
        assert vm_class["drops"] == old["vm"]["drops"] == 0
        # what the class let through: at most its limit (and a burst) over the load's time
        assert (storage["sent_bytes"] - old["storage"]["sent_bytes"]) * 8 / 1e6 < LIMIT * (
            SECONDS + 1
        )
        assert storage["id"] != vm_class["id"] == "1:2"
        # without a playbook: every host, every port, every class by its id
        assert set(everything["hosts"]) == set(lab.host_names)
        present = everything["hosts"][host]
        assert {"eth0", "eth1", "vnet0", "br-vm"} <= set(present["ports"])
        assert set(present["tc_classes"]["eth1"]) == {"1:1", "1:2", storage["id"]}
