"""Playbooks: a YAML list of plays (and `import_playbook`s), checked as loaded.

A play: `hosts` (a host pattern or a list of them, required), `name`, `vars` (a
mapping), `vars_files` (files of variables, relative to the playbook and inside its
directory unless written as an absolute path; later ones win),
`roles` (see vnetctl.playbook.roles), `pre_tasks`, `tasks`, `post_tasks` (run in this
order, the roles' tasks after pre_tasks), `tags`, `serial`, `max_fail_percentage`,
`health_gates` (see vnetctl.playbook.serial), `confirm_timeout` (commit confirmed: a
duration such as 60 or 2m, see README); `gather_facts` is accepted and ignored (vnetctl
reads the facts each module needs). Tasks: see vnetctl.playbook.tasks.

`- import_playbook: FILE` (relative to the playbook that names it) inserts FILE's plays;
its `vars` win over those plays' `vars` (not over their vars_files) and its `tags` are
added to theirs, as in Ansible. An import cycle is an error.

Anything else is an error at its file:line naming the play and the task. Argument names
are checked here against the module's spec; their values, which may be templates, are
checked per host when rendered (vnetctl.playbook.render).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vnetctl.errors import InputError, Location
from vnetctl.hostlib import type_name
from vnetctl.inventory.sources import VarLayer
from vnetctl.playbook import fields, serial
from vnetctl.playbook.model import Play, Scope, Task
from vnetctl.playbook.roles import RoleUse, role_use, roles_path
from vnetctl.playbook.tasks import Frame, TaskReader
from vnetctl.yamlsrc import load_vars_file, load_yaml_file, where, where_of

PLAY_KEYWORDS = (
    "name", "hosts", "vars", "vars_files", "roles", "pre_tasks", "tasks", "post_tasks",
    "tags", "serial", "max_fail_percentage", "health_gates", "confirm_timeout",
    "gather_facts", "persist",
)  # fmt: skip
IMPORT_KEYWORDS = ("import_playbook", "name", "vars", "tags")
MAX_IMPORTS = 32  # playbooks importing playbooks
PLAY_HINTS = {
    "become": "set ansible_become (or vnetctl_become) for the hosts in the inventory",
    "become_user": "set ansible_become_user for the hosts in the inventory",
    "remote_user": "set ansible_user for the hosts in the inventory",
    "handlers": "vnetctl has no handlers: a task that changes reports it",
    "strategy": "each host runs its play in one process, as with Ansible's free strategy; "
    "serial makes batches",
    "any_errors_fatal": "max_fail_percentage: 0 stops the rollout after a batch in which a "
    "host failed",
    "vars_prompt": "pass the values with -e",
    "order": "hosts run in inventory order",
    "run_once": "every task runs on each of its hosts",
}


class _Loader:
    def __init__(self, catalog: Mapping[str, dict], search: list[Path]):
        self.catalog = catalog
        self.search = search

    def plays(self, data: Any, path: Path, chain: tuple[Path, ...]) -> list[Play]:
        """The plays of a playbook's loaded data (`path`: its file, for locations and
        relative names; `chain`: the playbooks importing it, for cycles)."""
        start = Location(str(path), 1)
        if data is None:
            raise InputError("the playbook is empty: expected a list of plays", start)
        if not isinstance(data, list):
            raise InputError(
                f"a playbook is a list of plays (`- hosts: ...`), got a {type_name(data)}",
                where(data, start),
            )
        plays = []
        for i, item in enumerate(data):
            item_at = where_of(data, i, start)
            if isinstance(item, dict) and "import_playbook" in item:
                plays += self.imported(item, item_at, path, chain)
            else:
                plays.append(self.play(item, item_at, path.parent))
        return plays

    def imported(self, data: dict, at: Location, path: Path, chain: tuple) -> list[Play]:
        at = where(data, at)
        for key in data:
            if key not in IMPORT_KEYWORDS:
                hint = (
                    "put the condition on the imported plays' tasks, or use --limit"
                    if key == "when"
                    else f"import_playbook has {', '.join(IMPORT_KEYWORDS[1:])}"
                )
                raise InputError(f"import_playbook: unknown keyword '{key}': {hint}",
                                 where_of(data, key, at))  # fmt: skip
        file_at = where_of(data, "import_playbook", at)
        name = fields.file_name(data["import_playbook"], "import_playbook", file_at, "")
        target = fields.resolve(name, path.parent)
        if not target.is_file():
            raise InputError(f"import_playbook: {target}: no such file", file_at)
        key = target.resolve()
        if key in chain:
            names = [p.name for p in (*chain[chain.index(key) :], key)]
            raise InputError(f"import_playbook: import cycle: {' -> '.join(names)}", file_at)
        if len(chain) >= MAX_IMPORTS:
            raise InputError(f"import_playbook: playbooks nest more than {MAX_IMPORTS} deep",
                             file_at)  # fmt: skip
        layer = fields.variables(data, "vars", at, "import_playbook")
        tags = fields.tags(data.get("tags"), where_of(data, "tags", at), "import_playbook")
        plays = self.plays(load_yaml_file(target), target, (*chain, key))
        for play in plays:
            play.vars.update(layer.values)
            play.var_where.update(layer.origins)
            play.tags = list(dict.fromkeys([*play.tags, *tags]))
        return plays

    def play(self, data: Any, at: Location, base: Path) -> Play:
        if not isinstance(data, dict):
            raise InputError(f"a play must be a mapping with 'hosts' and 'tasks', got {data!r}", at)
        at = where(data, at)
        name = data.get("name")
        play = Play(hosts="", name=str(name) if name is not None else "", where=at)
        for key in data:
            if key not in PLAY_KEYWORDS:
                word = str(key)
                hint = PLAY_HINTS.get(word) or f"a play has {', '.join(PLAY_KEYWORDS)}"
                raise InputError(
                    f"unknown play keyword '{word}'{fields.near(word, PLAY_KEYWORDS)}: {hint}",
                    where_of(data, key, at),
                    play.context() if name is not None else "",
                )
        self._hosts(play, data, at, name is not None)
        context = play.context()
        layer = fields.variables(data, "vars", at, context)
        play.vars, play.var_where = dict(layer.values), dict(layer.origins)
        play.vars_files = self._vars_files(data, at, base, context)
        play.tags = fields.tags(data.get("tags"), where_of(data, "tags", at), context)
        self._rollout(play, data, at, context)
        play.tasks = self._tasks(play, data, at, base)
        return play

    def _hosts(self, play: Play, data: dict, at: Location, named: bool) -> None:
        hosts = data.get("hosts")
        play.hosts_where = where_of(data, "hosts", at)
        if isinstance(hosts, list) and hosts and all(isinstance(h, str | int) for h in hosts):
            play.hosts = [str(h) for h in hosts]
        elif isinstance(hosts, str | int) and str(hosts).strip():
            play.hosts = str(hosts)
        else:
            raise InputError(
                "a play needs `hosts:` with a host pattern (e.g. `all`, a group, `kvm*`)",
                play.hosts_where,
                play.context() if named else "",
            )

    def _vars_files(self, data: dict, at: Location, base: Path, context: str) -> list[VarLayer]:
        value = data.get("vars_files")
        value_at = where_of(data, "vars_files", at)
        if value is None:
            return []
        items = value if isinstance(value, list) else [value]
        layers = []
        for i, item in enumerate(items):
            item_at = where_of(value, i, value_at) if isinstance(value, list) else value_at
            if isinstance(item, list):
                raise InputError(
                    "vars_files: a list of candidate files (the first found) is not supported: "
                    "name one file",
                    item_at,
                    context,
                )
            name = fields.file_name(item, "vars_files", item_at, context)
            path = fields.resolve(name, base)
            fields.inside(name, path, base, "vars_files", item_at, context)
            if not path.is_file():
                raise InputError(f"vars_files: {path}: no such file", item_at, context)
            layer = VarLayer()
            layer.update(load_vars_file(path, "a vars file", context), Location(str(path), 1),
                         path.name)  # fmt: skip
            layers.append(layer)
        return layers

    def _rollout(self, play: Play, data: dict, at: Location, context: str) -> None:
        if "persist" in data:
            play.persist = fields.persist_mode(data["persist"], where_of(data, "persist", at),
                                               context)  # fmt: skip
        if data.get("confirm_timeout") is not None:
            play.confirm_timeout = fields.duration(
                data["confirm_timeout"], where_of(data, "confirm_timeout", at), context,
                "confirm_timeout", 5, 3600,
            )  # fmt: skip
        if "serial" in data:
            play.serial_where = where_of(data, "serial", at)
            play.serial = serial.parse_serial(data["serial"], play.serial_where, context)
        if data.get("max_fail_percentage") is not None:
            play.max_fail_percentage = serial.parse_max_fail(
                data["max_fail_percentage"], where_of(data, "max_fail_percentage", at), context
            )
        if "health_gates" in data:
            gates_at = where_of(data, "health_gates", at)
            play.health_gates = serial.parse_gates(data["health_gates"], gates_at, context)

    def _tasks(self, play: Play, data: dict, at: Location, base: Path) -> list[Task]:
        """pre_tasks, the roles' tasks, tasks, post_tasks: one list, numbered."""
        reader = TaskReader(play, self.catalog)
        top = Frame(base=base)
        tasks = reader.read_list(data, "pre_tasks", at, top)
        for use in self._roles(play, data, at, base):
            if use.tasks_file is None:
                continue
            frame = Frame(
                scope=Scope(role=use.role, block=(use.vars,) if use.vars.values else ()),
                tags=tuple(use.tags),
                when=tuple((w, use.when_where or use.role.where) for w in use.when),
                base=use.tasks_file.parent,
                chain=(use.tasks_file.resolve(),),
            )
            loaded = load_yaml_file(use.tasks_file)
            start = where(loaded, Location(str(use.tasks_file), 1))
            if loaded is not None and not isinstance(loaded, list):
                raise InputError(f"a role's tasks/main.yml is a list of tasks, got a "
                                 f"{type_name(loaded)}", start, play.context())  # fmt: skip
            tasks += reader.read_list(loaded or [], "", start, frame)
        tasks += reader.read_list(data, "tasks", at, top)
        tasks += reader.read_list(data, "post_tasks", at, top)
        for index, task in enumerate(tasks):
            task.index = index
        return tasks

    def _roles(self, play: Play, data: dict, at: Location, base: Path) -> list[RoleUse]:
        value = data.get("roles")
        value_at = where_of(data, "roles", at)
        if value is None:
            return []
        if not isinstance(value, list):
            raise InputError("roles must be a list", value_at, play.context())
        uses: dict[tuple, RoleUse] = {}
        for i, entry in enumerate(value):
            use = role_use(entry, where_of(value, i, value_at), base, self.search,
                           play.context())  # fmt: skip
            uses.setdefault(use.key(), use)  # the same use twice runs once, as in Ansible
        play.roles = [use.role for use in uses.values()]
        return list(uses.values())


def load_playbook(
    path: str | Path, catalog: Mapping[str, dict], roles: str | None = None
) -> list[Play]:
    """Load and check a playbook; `catalog`: module name -> argument spec; `roles`: the
    roles path option (None: from the environment, see vnetctl.playbook.roles)."""
    path = Path(path)
    if not path.exists():  # say which of the files given is missing
        raise InputError("playbook not found", Location(str(path)))
    data = load_yaml_file(path)
    return _Loader(catalog, roles_path(roles)).plays(data, path, (path.resolve(),))


def parse_playbook(
    data: Any, file: str, catalog: Mapping[str, dict], roles: str | None = None
) -> list[Play]:
    """A playbook already loaded (e.g. built in code); `file` names it in errors."""
    return _Loader(catalog, roles_path(roles)).plays(data, Path(file), ())
