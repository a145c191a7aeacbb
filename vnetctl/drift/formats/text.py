"""Text for a terminal: the summary first, then what drifted per host, fleet consistency,
and what was resolved since the previous run."""

from __future__ import annotations

from vnetctl.drift.formats.values import describe, resolved_note, value, when
from vnetctl.drift.report import DriftReport, HostState, Kind, natural_key
from vnetctl.output.words import count
from vnetctl.printable import printable

COLORS = {"red": "\033[31m", "yellow": "\033[33m", "green": "\033[32m", "bold": "\033[1m"}
RESET = "\033[0m"
STATE_COLOR = {
    HostState.IN_SYNC: "green",
    HostState.DRIFTED: "yellow",
    HostState.FAILED: "red",
    HostState.UNREACHABLE: "red",
}


def render(report: DriftReport, color: bool = False) -> str:
    def paint(text: str, name: str) -> str:
        return f"{COLORS[name]}{text}{RESET}" if color else text

    counts = report.counts()
    states = {s: len(report.hosts_in(s)) for s in HostState}
    verdict = {0: ("no drift", "green"), 2: ("DRIFT", "yellow"), 1: ("ERROR", "red"),
               3: ("UNREACHABLE", "red")}  # fmt: skip
    word, tone = verdict[report.exit_code()]
    if report.exit_code() == 2 and report.has_errors:
        word += " (and hosts not checked)"
    lines = [
        paint(f"drift check: {word}", tone) + f"  ({printable(report.playbook)} on "
        f"{printable(report.inventory)}, "
        + (f"{printable(report.scope)}, " if report.scope else "")
        + f"{when(report.started)}, {report.duration:.1f}s)",
        f"hosts: {len(report.hosts)} checked, {states[HostState.IN_SYNC]} in sync, "
        f"{states[HostState.DRIFTED]} drifted, {states[HostState.FAILED]} failed, "
        f"{states[HostState.UNREACHABLE]} unreachable",
        "items: " + ", ".join(f"{counts[k.value]} {k.value}" for k in Kind)
        + f"; {count(len(report.consistency), 'field')} inconsistent across hosts"
        + "".join(f"; {note}" for note in [resolved_note(report)] if note),
    ]  # fmt: skip
    in_sync_with_reason = [h for h in report.hosts_in(HostState.IN_SYNC) if h.reason]
    for host in report.needing_attention() + in_sync_with_reason:
        name = printable(host.host)
        lines += ["", paint(f"{name}: {host.state.value}", STATE_COLOR[host.state])]
        if host.reason:
            lines.append(f"  {printable(host.reason)}")
        for item in host.items:
            since = f"  (since {when(item.first_seen)})" if item.first_seen else ""
            lines.append(f"  {item.kind.value:<9}  {printable(item.resource)}  {describe(item)}"
                         f"{since}")  # fmt: skip
    if report.consistency:
        lines += ["", paint("fleet consistency (declared alike, set apart):", "bold")]
        for c in report.consistency:
            by_value: dict[str, list[str]] = {}
            for host, actual in c.values.items():
                by_value.setdefault(value(actual), []).append(host)
            groups = sorted(by_value.items(), key=lambda kv: -len(kv[1]))
            split = "; ".join(f"{host_list(hosts)} = {v}" for v, hosts in groups)
            lines.append(f"  {printable(c.resource)} {printable(c.field)} declared "
                         f"{value(c.declared)}: {split}")  # fmt: skip
    if report.resolved:
        lines += ["", paint("resolved since the previous run:", "green")]
        lines += [f"  {printable(i.host)}  {printable(i.resource)}  {describe(i)}"
                  for i in report.resolved]  # fmt: skip
    return "\n".join(lines) + "\n"


def host_list(hosts: list[str], most: int = 4) -> str:
    """A few hosts by name; many as a count with the first and last, for a terminal."""
    ordered = sorted(hosts, key=natural_key)
    if len(ordered) <= most:
        return printable(",".join(ordered))
    return printable(f"{len(ordered)} hosts ({ordered[0]} .. {ordered[-1]})")
