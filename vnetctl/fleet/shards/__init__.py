"""`--shard K/N`: one of N controllers works on shard K of the fleet.

A host's shard is fixed by its name alone: the first 8 bytes of SHA-256 of the name
(UTF-8), as a big-endian integer, modulo N, plus one. Every controller computes the same
assignment without talking to the others, and a host keeps its shard while N stays (a
host added or removed moves no other host).

The playbook is planned for the whole inventory (and --limit) before the plans are cut
to the shard, so what is checked across the fleet stays fleet-wide: port groups are
compared on every host's rendered tasks, and a mesh's members and peers come from the
inventory, whatever shard they are in.
"""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from vnetctl.catalog import Catalog
from vnetctl.fleet.port_groups import LINUX, OVS
from vnetctl.fleet.port_groups.policy import refuse
from vnetctl.playbook.render import PlayPlan, cut

MAX_SHARDS = 10_000


def shard_of(host: str, count: int) -> int:
    """The shard (1..count) that works on `host`."""
    digest = hashlib.sha256(host.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


@dataclass(frozen=True)
class Shard:
    index: int  # 1..count
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def holds(self, host: str) -> bool:
        return shard_of(host, self.count) == self.index


def parse_shard(text: str) -> Shard:
    """An argparse type: K/N with 1 <= K <= N <= MAX_SHARDS."""
    index, sep, count = text.partition("/")
    try:
        shard = Shard(int(index), int(count)) if sep else None
    except ValueError:
        shard = None
    if shard is None or not 1 <= shard.index <= shard.count <= MAX_SHARDS:
        raise argparse.ArgumentTypeError(
            f"expected K/N with 1 <= K <= N <= {MAX_SHARDS} (e.g. 2/4), got {text!r}"
        )
    return shard


def fleet_problems(plans: Sequence[PlayPlan], catalog: Catalog) -> list[str]:
    """What the fleet-wide checks refuse on the whole fleet's plans (port groups)."""
    return [p for policy in (LINUX, OVS) for p in policy.problems(list(plans), catalog)]


def restrict(plans: Sequence[PlayPlan], shard: Shard, catalog: Catalog) -> list[PlayPlan]:
    """The fleet's plans cut to `shard`'s hosts, once the fleet-wide checks passed on
    all of them (InputError otherwise, as an unsharded run refuses)."""
    refuse(fleet_problems(plans, catalog))
    return cut(plans, shard.holds)
