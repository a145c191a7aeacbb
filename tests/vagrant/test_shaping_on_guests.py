"""tc shaping on a full kernel (issue 13 on the Vagrant tier): an HTB tree whose leaves
are fq_codel (this kernel has it; the lab's has not), and a class limit that holds for
real traffic between two guests."""

from __future__ import annotations

import json

import pytest

from tests.vagrant.guests import ROOT, report, vnetctl

pytestmark = pytest.mark.vagrant

PLAYBOOK = str(ROOT / "tests" / "vagrant" / "playbooks" / "shaping.yml")
LIMIT_MBIT = 20  # software-emulated guests move a few hundred Mbit/s: 20 is well below
SECONDS = 6


def iperf3_mbit(client, server, port: int = 5201) -> float:
    """Mbit/s received by `server` from `client` over eth2's addresses, TCP, SECONDS."""
    server.sh(f"iperf3 -s -1 -D -p {port}")
    out = client.sh(f"iperf3 -c 192.168.150.2 -p {port} -t {SECONDS} -J", timeout=SECONDS + 60)
    return json.loads(out)["end"]["sum_received"]["bits_per_second"] / 1e6


def test_htb_with_fq_codel_leaves_and_a_limit_that_holds(clean, inventory, capsys):
    h1, h2 = clean[0], clean[1]
    h1.sh("ip addr add 192.168.150.1/24 dev eth2")
    h2.sh("ip addr add 192.168.150.2/24 dev eth2")
    unshaped = iperf3_mbit(h1, h2)
    assert unshaped > 2 * LIMIT_MBIT, f"{unshaped:.0f} Mbit/s unshaped: too slow to test"

    code, doc = vnetctl(
        capsys, "run", PLAYBOOK, "-i", inventory, "--limit", h1.name,
        "-e", f"limited_mbit={LIMIT_MBIT}",
    )  # fmt: skip
    assert code == 0, doc
    qdiscs = json.loads(h1.sh("tc -j qdisc show dev eth2"))
    root = [q for q in qdiscs if q.get("root")]
    assert [q["kind"] for q in root] == ["htb"]
    leaves = [q["kind"] for q in qdiscs if not q.get("root")]
    assert leaves and set(leaves) == {"fq_codel"}, qdiscs

    shaped = iperf3_mbit(h1, h2)
    report(
        "shaping.txt",
        f"traffic_shaping on {h1.name} eth2: unshaped {unshaped:.1f} Mbit/s, class limited "
        f"to {LIMIT_MBIT} Mbit/s measured {shaped:.1f} Mbit/s over {SECONDS} s (iperf3, TCP)",
    )
    assert abs(shaped - LIMIT_MBIT) <= 0.1 * LIMIT_MBIT
