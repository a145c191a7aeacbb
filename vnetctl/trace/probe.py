"""`vnetctl trace --probe`: the traced path checked with real frames.

    run_probe(context: RunContext, trace: dict, count: int = 3, timeout: float = 5.0) -> dict

`context` is what every fleet command starts from (vnetctl.cli.common.run_context(args,
check=False)); `trace` a "vnetctl.trace/1" document (its source host and port, its packet,
its hops: only these are read). Fills trace["probe"] and returns it:

    {"marker": hex, "count": n, "seen": [{"host", "device", "layer", "count"}] (path order),
     "last_seen": {"host", "device", "hop"} or None, "delivered": bool, "elapsed_s": s,
     "injected": {"host", "device", "namespace"} or None,
     "watched": [{"host", "device", "directions", "capture_drops"[, "problem"]}],
     "not_watched": [{"host", "device", "why"}], "errors": {host: why}
     [, "frame": why the frames are bare Ethernet where the packet had one address]}

Like `mesh check` (vnetctl.fleet.mesh.probe), three plays of the host module
`path_probe` on one set of connections, each ending on every host before the next
starts: watch (on every host of the path, a watcher bound to each hop's device), inject
(`count` marked frames from the VM's side of the source port), collect. The watchers stop
on their own after `timeout` s whatever the controller does. `last_seen` is the device of
the furthest hop (in path order, a device counted at its first hop) that saw a probe
frame; `delivered`: the destination port saw one.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from vnetctl.errors import InputError, Location
from vnetctl.fleet.context import RunContext
from vnetctl.fleet.execute import make_runner, run_interruptible
from vnetctl.hostlib import load as host_library
from vnetctl.playbook.model import Play
from vnetctl.playbook.render import HostTask, PlayPlan
from vnetctl.playbook.validate import validate_args
from vnetctl.runner.results import RunResult, Status
from vnetctl.secrets import redact

MODULE = "path_probe"
WINDOW_CLOSED = (
    "its watch ended at its time bound before collect came: frames sent later "
    "were not watched (a longer --timeout?)"
)
PACKET_KEYS = ("proto", "port", "size", "src_mac", "dst_mac", "src_ip", "dst_ip", "vlan")


def path_devices(trace: dict) -> tuple[list[tuple[str, str, str, int]], list[dict]]:
    """([(host, device, layer, first hop index)] in path order, one per host and device;
    [{host, device, why}] the names no host command may take). The source and destination
    ports count too (before the first hop, after the last) when no hop names them; a
    bond's members at the bond's hop (the probe then says which one carried the frames)."""
    problem_of = host_library().ifname_problem
    hops = list(trace.get("hops") or [])
    ends = [(trace.get("source") or {}, -1), (trace.get("destination") or {}, len(hops))]
    places = []
    for i, h in enumerate(hops):
        places.append((h.get("host"), h.get("device"), h.get("layer") or "", i))
        if h.get("layer") == "bond":  # an OVS bond is no device: its members are
            detail = h.get("detail") or {}
            members = [*(detail.get("enabled") or []), *(detail.get("disabled") or [])]
            places += [(h.get("host"), m, "bond", i) for m in members if isinstance(m, str)]
    named = {(host, device) for host, device, _, _ in places}
    for end, index in ends:
        if end.get("host") and end.get("port") and (end["host"], end["port"]) not in named:
            places.insert(0 if index < 0 else len(places),
                          (end["host"], end["port"], "port", index))  # fmt: skip
    devices, bad, known = [], [], set()
    for host, device, layer, index in places:
        if not host or not device or (host, device) in known:
            continue
        known.add((host, device))
        problem = problem_of(device)
        if problem is not None:
            bad.append({"host": host, "device": device, "why": f"not a device name: {problem}"})
        else:
            devices.append((host, device, layer, index))
    return devices, bad


def run_probe(context: RunContext, trace: dict, count: int = 3, timeout: float = 5.0) -> dict:
    started = time.monotonic()
    source, marker = trace.get("source") or {}, secrets.token_hex(8)
    if not source.get("host") or not source.get("port"):
        raise InputError("--probe needs a source port on a host (a VM's or a port's)")
    devices, not_watched = path_devices(trace)
    hosts = list(dict.fromkeys([source["host"], *(h for h, _, _, _ in devices)]))
    unknown = [h for h in hosts if h not in context.inventory.hosts]
    if unknown:
        raise InputError(f"--probe: {', '.join(unknown)} not in the inventory")
    packet = {k: v for k, v in (trace.get("packet") or {}).items() if k in PACKET_KEYS}
    packet = {k: v for k, v in packet.items() if v is not None}
    bare = None
    if ("src_ip" in packet) != ("dst_ip" in packet):  # one end has no address
        bare = "one end has no IP address: a bare Ethernet frame, to the destination's MAC"
        packet = {k: v for k, v in packet.items() if k not in ("src_ip", "dst_ip")}
    watch_args = {h: {"action": "watch", "marker": marker, "count": count, "timeout": timeout,
                      "devices": [d for host, d, _, _ in devices if host == h]}
                  for h in hosts}  # fmt: skip
    inject_args = {"action": "inject", "marker": marker, "count": count,
                   "port": source["port"], "packet": packet}  # fmt: skip
    spec = context.catalog[MODULE]
    for args in [*watch_args.values(), inject_args]:  # refused here, before any host
        validate_args(MODULE, spec, args, lambda _: None, "vnetctl trace --probe")
    problem = context.catalog.load(MODULE).frames.problem(packet)
    if problem:
        raise InputError(f"--probe: the packet: {problem}")
    plans = [
        _play("watch", watch_args),
        _play("inject", {source["host"]: inject_args}),
        _play("collect", {h: {"action": "collect", "marker": marker} for h in hosts}),
    ]
    run = _run(context, hosts, plans)
    probe = summary(trace, run, devices, marker, count)
    probe["not_watched"] = not_watched + probe["not_watched"]
    if bare:
        probe["frame"] = bare
    probe["elapsed_s"] = round(time.monotonic() - started, 3)
    trace["probe"] = probe
    return probe


def _play(action: str, args_of: dict[str, dict]) -> PlayPlan:
    where = Location(f"<vnetctl trace --probe: {action}>")
    tasks = {h: [HostTask(0, f"probe {action}", MODULE, a, where)] for h, a in args_of.items()}
    hosts = list(args_of)
    return PlayPlan(Play(hosts=hosts, name=f"path probe: {action}", where=where), hosts, tasks)


def _run(context: RunContext, hosts: list[str], plans: list[PlayPlan]) -> RunResult:
    runner = make_runner(context, hosts)

    async def probe() -> RunResult:
        try:
            await runner.run_plays(plans)
            runner.result.interrupted = runner.stop.requested
            return runner.result
        finally:
            await runner.pool.close_all()

    return run_interruptible(runner, probe())


def summary(trace: dict, run: RunResult, devices: list, marker: str, count: int) -> dict[str, Any]:
    """The probe's report from the three plays' results (pure: tested on recorded ones)."""
    results = {(r.task, r.host): r for r in run.results}
    errors = {h: msg for h, msg in run.unreachable.items()}
    for r in run.results:
        if r.status in (Status.FAILED, Status.UNREACHABLE):
            errors.setdefault(r.host, f"{r.task}: {r.msg}")
        elif r.data.get("error"):
            errors.setdefault(r.host, f"{r.task}: {r.data['error']}")
    counted, watched, not_watched = {}, [], []
    for host in dict.fromkeys(h for h, _, _, _ in devices):
        watch = results.get(("probe watch", host))
        collect = results.get(("probe collect", host))
        if watch is None or watch.status is Status.FAILED:
            continue
        for dev, why in sorted((watch.data.get("not_watched") or {}).items()):
            not_watched.append({"host": host, "device": dev, "why": why})
        seen_here = (collect.data.get("devices") or {}) if collect is not None else {}
        if collect is not None and collect.data.get("end") == "time":
            errors.setdefault(host, WINDOW_CLOSED)
        for dev in watch.data.get("watched") or []:
            got = seen_here.get(dev) or {}
            counted[(host, dev)] = got.get("count", 0)
            watched.append({"host": host, "device": dev, "directions": got.get("directions", []),
                            "capture_drops": got.get("capture_drops")})  # fmt: skip
            if got.get("problem"):  # e.g. the device is down: its socket said so
                watched[-1]["problem"] = got["problem"]
    seen, last = [], None
    for host, dev, layer, index in devices:
        if counted.get((host, dev)):
            got = counted[(host, dev)]
            seen.append({"host": host, "device": dev, "layer": layer, "count": got})
            on_path = 0 <= index < len(trace.get("hops") or [])
            last = {"host": host, "device": dev, "hop": index if on_path else None}
    dest = trace.get("destination") or {}
    inject = results.get(("probe inject", (trace.get("source") or {}).get("host")))
    injected = None
    if inject is not None and inject.data.get("injected_at"):
        injected = {"host": inject.host, **inject.data["injected_at"]}
    return {
        "marker": marker,
        "count": count,
        "seen": seen,
        "last_seen": last,
        "delivered": bool(counted.get((dest.get("host"), dest.get("port")))),
        "injected": injected,
        "watched": watched,
        "not_watched": not_watched,
        "errors": redact(errors),
        "interrupted": run.interrupted,
    }
