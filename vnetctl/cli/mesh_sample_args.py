"""The pair-sampling options `vnetctl mesh check` and `vnetctl stats --probe` share."""

from __future__ import annotations

import argparse

from vnetctl.cli.common import bounded_int
from vnetctl.fleet.mesh.sample import DEFAULT_PEERS, PairSample, new_seed


def add_sample_arguments(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--sample", type=bounded_int(1, 10_000), default=DEFAULT_PEERS,
                       metavar="K", help="peers each member probes per segment: its "
                       f"successor on a ring and K-1 drawn from the seed (default {DEFAULT_PEERS}; "
                       "a segment of K+1 members or fewer is probed whole)")  # fmt: skip
    which.add_argument("--full", action="store_true",
                       help="probe every ordered pair of every segment (N² probes)")  # fmt: skip
    parser.add_argument("--seed", type=bounded_int(0, 2**31 - 1), metavar="S",
                        help="the seed of the sample (default: a new one, printed), to "
                        "repeat a run's pairs")  # fmt: skip


def sample_from_args(args: argparse.Namespace) -> PairSample:
    if args.full:
        return PairSample(None)
    return PairSample(args.sample, new_seed() if args.seed is None else args.seed)
