"""iperf3 TCP flows run side by side between two network namespaces, the one runner of
`python -m bench.shaping` and tests/integration/test_shaping_contention.py.

One server per port in `server` (each serves one test and exits), one client per port
in `client`, all clients at the same time; every process bounded by `timeout`, the
servers killed (by their own ids) whatever happens.
"""

from __future__ import annotations

import json
import subprocess
import time

LISTEN_SECONDS = 5


def in_ns(namespace: str, *argv: str, timeout: float = 30) -> str:
    """stdout of `argv` run in `namespace`; RuntimeError where it fails."""
    done = subprocess.run(["ip", "netns", "exec", namespace, *argv], capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} in {namespace}: {done.stderr.strip()}")
    return done.stdout


def flows(client: str, server: str, address: str, ports: list[int], seconds: int,
          omit: int = 1) -> dict[int, float]:  # fmt: skip
    """Mbit/s of TCP payload each port's flow received (iperf3's sum_received), all
    flows at the same time from `client` to `address` in `server`, the first `omit`
    seconds left out."""
    limit = str(seconds + omit + 15)
    servers = [subprocess.Popen(["ip", "netns", "exec", server, "timeout", limit, "iperf3",
                                 "-s", "-1", "-p", str(p)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL) for p in ports]  # fmt: skip
    try:
        deadline = time.monotonic() + LISTEN_SECONDS
        while not all(f":{p} " in in_ns(server, "ss", "-Hltn") for p in ports):
            if time.monotonic() > deadline:
                raise RuntimeError(f"iperf3 servers on {ports} did not listen")
            time.sleep(0.05)
        clients = [subprocess.Popen(["ip", "netns", "exec", client, "timeout", limit, "iperf3",
                                     "-c", address, "-p", str(p), "-t", str(seconds), "-O",
                                     str(omit), "-J"], stdout=subprocess.PIPE, text=True)
                   for p in ports]  # fmt: skip
        outputs = []
        for proc in clients:
            with proc:
                outputs.append(proc.communicate(timeout=int(limit) + 5)[0])
    finally:
        for proc in servers:
            proc.kill()
            proc.wait()
    return {p: json.loads(o)["end"]["sum_received"]["bits_per_second"] / 1e6
            for p, o in zip(ports, outputs, strict=True)}  # fmt: skip
