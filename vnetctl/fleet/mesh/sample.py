"""Which pairs `vnetctl mesh check` (and `vnetctl stats --probe`) probe: every ordered
pair of a segment's members is N² probes, too many for a fleet, so by default each
member probes a bounded sample of its peers per segment: its successor on a ring of the
members (so every member is probed as source and as target, and every segment with two
members or more is probed) and K-1 more drawn at random from a seed (printed, so a run
can be repeated with --seed). A segment small enough that every pair fits in the
sample is probed whole; --full probes every pair of every segment."""

from __future__ import annotations

import random
from dataclasses import dataclass

DEFAULT_PEERS = 3  # per member and segment: the ring's successor and two drawn peers


@dataclass(frozen=True)
class PairSample:
    """`peers` None: every pair (--full); else at most `peers` targets per member and
    segment, drawn from `seed`."""

    peers: int | None = DEFAULT_PEERS
    seed: int = 0

    @property
    def full(self) -> bool:
        return self.peers is None

    def targets(self, key: str, members: list[str]) -> dict[str, list[str]]:
        """{source: [targets]} among `members` of the segment `key`, each list sorted."""
        ring = sorted(members)
        n = len(ring)
        if self.full or n - 1 <= self.peers:
            return {src: [dst for dst in ring if dst != src] for src in ring}
        chosen = {}
        for i, src in enumerate(ring):
            successor = ring[(i + 1) % n]
            others = [dst for dst in ring if dst not in (src, successor)]
            # a string seed is hashed the same way in every process (not PYTHONHASHSEED)
            draw = random.Random(f"{self.seed}/{key}/{src}")
            chosen[src] = sorted([successor, *draw.sample(others, self.peers - 1)])
        return chosen

    def describe(self, probed: int, total: int) -> dict:
        """The JSON report's `sample`: how the pairs were chosen, and how many not probed."""
        return {
            "mode": "full" if self.full else "sample",
            "peers_per_member": self.peers,
            "seed": None if self.full else self.seed,
            "pairs_probed": probed,
            "pairs_total": total,
            "pairs_not_probed": total - probed,
        }


def new_seed() -> int:
    return random.SystemRandom().randrange(1, 10**6)
