"""vnetctl's benchmark: the same work through vnetctl, ansible-playbook (pipelining, and
Mitogen where it installs), pyinfra and the SSH floor, on one lab, in one session.

Run it with `scripts/bench.sh` (see bench/README.md). It prints figures; it asserts
nothing. tests/integration/test_bench_harness.py only checks that it runs at N = 3.
"""
