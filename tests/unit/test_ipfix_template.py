"""IPFIX's template interval (issue 26): the IPFIX table is read whole, so the column
OVS 3.2 added is read where it exists and nothing breaks where it does not; the OVSDB
schema version says which."""

from __future__ import annotations

import json
import sys

from vnetctl.catalog import Catalog

Catalog().host_lib()
ovs = sys.modules["vnet_ovs"]
config = sys.modules["vnet_ovs_config"]
mirrors = sys.modules["vnet_ovs_mirrors"]


def listing(headings: list[str], rows: list[list]) -> str:
    return json.dumps({"headings": headings, "data": rows})


def gathered(ipfix_columns: list[str], ipfix_row: list) -> tuple[list[str], dict]:
    """One ovs-vsctl, as a host answers it: empty tables, but one bridge and its IPFIX."""
    calls = []

    def runner(argv, **_):
        calls.append(argv)
        tables = [argv[i + 3] if argv[i + 1].startswith("--columns") else argv[i + 2]
                  for i, word in enumerate(argv) if word == "--"]  # fmt: skip
        out = []
        for table in tables:
            if table == "Bridge":
                bridge = {"_uuid": ["uuid", "b1"], "name": "br0", "ports": ["set", []],
                          "datapath_type": "", "fail_mode": ["set", []], "stp_enable": False,
                          "rstp_enable": False, "mirrors": ["set", []],
                          "netflow": ["set", []], "sflow": ["set", []],
                          "ipfix": ["uuid", "i1"]}  # fmt: skip
                out.append(listing(list(bridge), [list(bridge.values())]))
            elif table == "IPFIX":
                out.append(listing(["_uuid", *ipfix_columns], [[["uuid", "i1"], *ipfix_row]]))
            else:
                out.append(listing([], []))
        return "\n".join(out)

    facts = ovs.gather({"ovs_config": config.CONFIG}, runner)
    return calls[0], facts["ovs_config"]["bridges"]["br0"]["ipfix"]


def test_the_ipfix_table_is_listed_whole_and_the_other_tables_by_column():
    argv, _ = gathered(["targets"], ["127.0.0.1:4739"])
    words = " ".join(argv)
    assert " -- list IPFIX" in words  # a column an older OVS lacks would fail them all
    assert " -- --columns=_uuid,datapath_type," in words.split("list Bridge")[0]


def test_before_ovs_32_no_interval_is_read_and_after_it_unset_is_600():
    old = ["targets", "sampling", "obs_domain_id", "obs_point_id", "cache_active_timeout",
           "cache_max_flows"]  # fmt: skip
    row = ["127.0.0.1:4739", 1, ["set", []], ["set", []], ["set", []], ["set", []]]
    assert "template_interval" not in gathered(old, row)[1]
    assert gathered([*old, "template_interval"], [*row, ["set", []]])[1]["template_interval"] == 600
    assert gathered([*old, "template_interval"], [*row, 60])[1]["template_interval"] == 60


def test_the_schema_version_is_read_as_ovsdb_client_says_it():
    assert mirrors.schema_version("8.3.1\n") == (8, 3, 1)
    assert mirrors.schema_version("8.4.0") >= mirrors.INTERVAL_SCHEMA > (8, 3, 1)
    assert mirrors.schema_version("") is None and mirrors.schema_version("x.1") is None
