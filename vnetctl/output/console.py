"""Console output in the spirit of ansible-playbook: a line per task and host as results
arrive, field diffs with --diff, a recap per host. On a large fleet, a progress bar and
only the lines that need attention (changed, failed, unreachable)."""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from vnetctl.output import verbosity
from vnetctl.output.pipes import PipeAwareConsole
from vnetctl.output.words import count, names
from vnetctl.printable import printable, printable_lines
from vnetctl.runner.results import ROLLOUT_LABEL, RunResult, Status, TaskResult
from vnetctl.secrets import redact

STYLE = {
    Status.OK: "green",
    Status.CHANGED: "yellow",
    Status.FAILED: "bold red",
    Status.SKIPPED: "cyan",
    Status.UNREACHABLE: "bold magenta",
    Status.UNKNOWN: "bold red",
    Status.NOT_STARTED: "dim",
    Status.RESCUED: "yellow",
}
# shown in the recap only when some host has them (an interrupted or broken run)
RARE = (Status.UNKNOWN, Status.NOT_STARTED, Status.RESCUED)

QUIET_FLEET = 10  # above this many hosts, ok/skipped lines are summarised by the bar
LIMIT_SHOWN = 10  # hosts written out as a --limit to copy


class ConsoleReporter:
    def __init__(
        self,
        console: Console | None = None,
        show_diff: bool = False,
        verbose: int = 0,
        check: bool = False,
    ):
        # soft_wrap: a piped or logged line stays one line, whatever the width
        self.console = console or PipeAwareConsole(highlight=False, soft_wrap=True)
        self.show_diff = show_diff
        self.check = check  # -vvv: a task's changes are what it would run
        self.verbosity = int(verbose)  # -v, -vv, ...: vnetctl.output.verbosity
        self.verbose = self.verbosity >= 1
        self._plans: list = []  # planned plays whose -v/-vv lines are still to be shown
        self._progress: Progress | None = None
        self._bar = None
        self._quiet = False
        self._persist: dict[str, str] = {}  # host -> its boot persistence mode (and why)

    # Events -------------------------------------------------------------
    def play_started(self, name: str, hosts: Sequence[str], task_count: int) -> None:
        self._stop_progress()
        title = printed(f"PLAY [{name}] ({count(len(hosts), 'host')}, {count(task_count, 'task')})")
        self.console.rule(title, align="left", style="bold")
        self._plan_shown(name)
        self._quiet = len(hosts) > QUIET_FLEET and not self.verbose
        if self._quiet and self.console.is_terminal:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self._bar = self._progress.add_task("host tasks", total=len(hosts) * task_count)
            self._progress.start()

    def task_done(self, result: TaskResult) -> None:
        if self._progress is not None:
            self._progress.advance(self._bar)
        if self._quiet and result.status in (Status.OK, Status.SKIPPED, Status.NOT_STARTED):
            return
        if result.task == ROLLOUT_LABEL:  # said once, with every such host: rollout_stopped
            return
        style = STYLE[result.status]
        line = (
            f"[{style}]{_label(result.status)}[/]: [[bold]{printed(result.host)}[/]] "
            f"{printed(result.task)}"
        )
        if result.msg and (result.status is not Status.OK or result.data.get("shown")):
            line += f" [dim]-[/] {escape(printable_lines(result.msg))}"
        self.console.print(line)
        if self.show_diff and result.changes:
            for change in result.changes:
                self.console.print(
                    f"    {printed(change['field'])}: [red]{printed(_show(change['before']))}[/]"
                    f" -> [green]{printed(_show(change['after']))}[/]"
                )
        if self.verbosity >= 3:
            ran = result.data.get("ran")
            for line in verbosity.command_lines(result.commands, ran, self.check):
                self.console.print(line)
        self._persisted(result)
        for field, why in sorted((result.data.get("waiting") or {}).items()):  # vnet_host
            self.console.print(f"    [yellow]waiting[/]: {printed(field)} {printed(str(why))}")
        for touch in result.data.get("management_path") or []:  # see vnet_safety
            mark = "[bold red]CUTS[/]" if touch.get("cuts") else "[yellow]touches[/]"
            self.console.print(
                f"    {mark} the management path: {printed(str(touch.get('device')))} "
                f"{printed(str(touch.get('effect')))} [dim]({printed(str(touch.get('step')))})[/]"
            )

    def planned(self, plans: Sequence) -> None:
        """The plays about to run: with -v, -vv, each shows its skipped tasks and
        rendered arguments under its header (a rolling play: all its hosts, once)."""
        self._plans = list(plans) if self.verbosity else []

    def _plan_shown(self, name: str) -> None:
        plan = next((p for p in self._plans if p.play.display_name == name), None)
        if plan is not None:
            self._plans.remove(plan)
            for line in verbosity.plan_lines(plan, self.verbosity):
                self.console.print(line)

    def _persisted(self, result: TaskResult) -> None:
        """Boot persistence (vnet_persist): each host's mode, said once in the recap (not
        per host on every run); with --diff, each boot configuration file's diff."""
        persist = result.data.get("persist") or {}
        if persist and result.host not in self._persist:
            self._persist[result.host] = f"{persist.get('mode')} ({persist.get('why')})"
        for change in persist.get("files") or [] if self.show_diff else []:
            path = "/" + change["path"]
            lines = difflib.unified_diff(
                (change["before"] or "").splitlines(), (change["after"] or "").splitlines(),
                path if change["before"] is not None else "/dev/null",
                path if change["after"] is not None else "/dev/null", lineterm="",
            )  # fmt: skip
            for text in lines:
                style = {"+": "green", "-": "red", "@": "cyan"}.get(text[:1], "")
                line = printed(text)
                self.console.print(f"    [{style}]{line}[/]" if style else f"    {line}")

    # Rolling plays (vnetctl.fleet.rollout) ------------------------------------
    def batch_started(self, play: str, number: int, total: int, hosts: Sequence[str]) -> None:
        self._stop_progress()
        shown = ", ".join(hosts[:10]) + (f" and {len(hosts) - 10} more" if len(hosts) > 10 else "")
        self.console.print(f"[bold]BATCH {number}/{total}[/] of [bold]{printed(play)}[/]: "
                           f"{printed(shown)}")  # fmt: skip

    def gates_passed(self, where: str, labels: Sequence[str]) -> None:
        self._stop_progress()
        passed = ", ".join(printed(label) for label in labels)
        self.console.print(f"[green]health gates passed[/] after {printed(where)}: {passed}")

    def gates_skipped(self, where: str) -> None:
        self.console.print(f"[dim]health gates not run in check mode[/] after {printed(where)}")

    def rollout_stopped(self, stopped: dict) -> None:
        """Once: why, what became of the stopped batch, and the hosts never started."""
        self._stop_progress()
        said = [f"rollout stopped: {stopped['reason']}"]
        if stopped["rolled_back"]:
            said.append(f"rolled back by their hosts: {names(stopped['rolled_back'])}")
        if stopped["changed"]:
            left = stopped["changed"]
            limit = f" (--limit {','.join(left)})" if len(left) <= LIMIT_SHOWN else ""
            said.append(f"its changes stay on {names(left)}: to undo them, run the play "
                        f"again with the previous values on them{limit}")  # fmt: skip
            if stopped["gate"]:
                said.append("with confirm_timeout (or --confirm-timeout) a failed health "
                            "gate has the batch roll back by itself")  # fmt: skip
        untouched = stopped["not_started"]
        if untouched:
            said.append(f"not started: {count(len(untouched), 'host')}: {names(untouched)}")
        self.console.print(f"[bold red]{printed('; '.join(said))}[/]", soft_wrap=True)

    def note(self, host: str, text: str) -> None:
        """What happens on a host between results: another run's lock held, a play
        confirmed... A host's own words: redacted here, as results are where they enter."""
        self.console.print(f"[dim]note[/]: [[bold]{printed(host)}[/]] {printed(redact(text))}")

    # End of run ------------------------------------------------------------
    def recap(self, run: RunResult, check: bool = False) -> None:
        self._stop_progress()
        title = "RECAP" + (" (check mode: nothing applied)" if check else "")
        if run.interrupted:
            title += " (INTERRUPTED: what is known)"
        stats = run.stats()
        shown = [s for s in Status if s not in RARE or any(c.get(s.value) for c in stats.values())]
        table = Table(
            title=title,
            title_justify="left",
            box=None,
            pad_edge=False,
        )
        table.add_column("host", style="bold")
        for status in shown:
            table.add_column(_label(status), justify="right", style=STYLE[status])
        for host, counts in stats.items():
            table.add_row(printed(host), *(str(counts.get(s.value, 0)) for s in shown))
        self.console.print(table)
        totals = {s: sum(c.get(s.value, 0) for c in stats.values()) for s in Status}
        summary = ", ".join(
            f"{totals[s]} {_label(s)}"
            for s in Status
            if totals[s] or s in (Status.OK, Status.CHANGED, Status.FAILED)
        )
        self.console.print(f"{count(len(stats), 'host')}: {summary}")
        modes: dict[str, list[str]] = {}
        for host, said in self._persist.items():
            modes.setdefault(said, []).append(host)
        if modes:  # the plan says which boot persistence each host gets (README)
            ranked = sorted(modes.items(), key=lambda item: -len(item[1]))
            shown = "; ".join(
                f"{said}: {count(len(hosts), 'host')}{_named(hosts) if i else ''}"
                for i, (said, hosts) in enumerate(ranked)
            )  # the hosts of the less common modes are named: the exceptions
            self.console.print(f"boot configuration: {printed(shown)}")
        for host, reason in run.unreachable.items():
            self.console.print(f"[bold magenta]unreachable[/]: {printed(host)}: {printed(reason)}")

    def _stop_progress(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def printed(text: object) -> str:
    """Text from a playbook or a host, as one line: control characters escaped (a line
    break must not print a result line of its own), rich's markup too."""
    return escape(printable(text))


def _named(hosts: list[str], most: int = 5) -> str:
    more = f", +{len(hosts) - most}" if len(hosts) > most else ""
    return f" ({', '.join(hosts[:most])}{more})"


def _label(status: Status) -> str:
    return status.value.replace("_", " ")


def _show(value: object) -> str:
    """None is a field the host does not have (yet); lists read as lists."""
    if value is None:
        return "(none)"
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value)
