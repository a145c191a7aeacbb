"""YAML that remembers where things came from, so every input error can say file:line.

Mappings load as `YamlMap` (a dict) and sequences as `YamlList` (a list). Both know the
file and the 1-based line where they start (`.where`), and the line of each key or item
(`.where_of(key_or_index)`). Scalars stay plain Python values; their line is the line of
the key or item that holds them. The loader is PyYAML's safe loader (YAML 1.1 types, as
Ansible reads them: `yes` is true, `0755` is an int), plus:

- a duplicate key in one mapping is an error (PyYAML would silently keep the last one);
- a syntax error becomes `InputError` at the file and line PyYAML reports, with its text;
- `!vault` values and vault-encrypted files are decrypted as they are read, their
  values secrets (vnetctl.vault.values);
- a file that holds only variables (`load_vars_file`: vars_files, `-e @FILE`,
  group_vars/host_vars, a role's defaults and vars) may hold secrets, and its path may
  lead anywhere (a symlink to /etc/shadow): its errors give file, line and column and
  never a line, key or value of it;
- bounded: a file above MAX_YAML_BYTES, aliases that expand a document by more than
  MAX_ALIAS_NODES nodes (a "billion laughs": nine aliases of nine aliases of ...) and an
  alias inside the node it names (a recursive document) are refused at once, before
  anything walks the data. PyYAML shares an aliased node's value instead of copying
  it, but everything after loading (rendering, JSON, drift) walks the copies.
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import yaml

from vnetctl.errors import InputError, Location
from vnetctl.hostlib import type_name
from vnetctl.vault import cipher, values

_BaseLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
MAX_YAML_BYTES = 16 * 1024 * 1024
MAX_ALIAS_NODES = 100_000  # a legitimate file uses a few hundred: merge keys, shared lists


class YamlTooLarge(InputError):
    """A document refused for its size or its alias expansion, not for its syntax."""


class YamlMap(dict):
    """A mapping from a YAML file: a dict that knows its own line and each key's line."""

    where: Location
    key_lines: dict[Any, int]

    def __init__(self, *args: Any, where: Location | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.where = where or Location("<data>")
        self.key_lines = {}

    def where_of(self, key: Any) -> Location:
        """The location of `key`, or of the mapping itself when the key is absent."""
        line = self.key_lines.get(key)
        return Location(self.where.file, line) if line else self.where


class YamlList(list):
    """A sequence from a YAML file: a list that knows its own line and each item's line."""

    where: Location
    item_lines: list[int]

    def __init__(self, *args: Any, where: Location | None = None):
        super().__init__(*args)
        self.where = where or Location("<data>")
        self.item_lines = []

    def where_of(self, index: int) -> Location:
        if 0 <= index < len(self.item_lines):
            return Location(self.where.file, self.item_lines[index])
        return self.where


def where_of(container: Any, key: Any, fallback: Location) -> Location:
    """`container.where_of(key)` for loaded YAML; `fallback` for plain Python data."""
    if isinstance(container, YamlMap | YamlList):
        return container.where_of(key)
    return fallback


def where(container: Any, fallback: Location) -> Location:
    """`container.where` for loaded YAML; `fallback` for plain Python data."""
    if isinstance(container, YamlMap | YamlList):
        return container.where
    return fallback


class _LineLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    file: str = "<string>"
    quiet: bool = False  # a file of variables: errors show none of its text

    def _loc(self, node: yaml.Node) -> Location:
        return Location(self.file, node.start_mark.line + 1)


def _check_duplicates(loader: _LineLoader, node: yaml.MappingNode) -> None:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, Hashable):
            raise InputError(
                "a mapping key must be a plain value, not a list or mapping",
                loader._loc(key_node),
            )
        line = key_node.start_mark.line + 1
        if key in seen:
            shown = "" if loader.quiet else f" '{key}'"
            raise InputError(
                f"duplicate key{shown} (first defined at line {seen[key]})",
                Location(loader.file, line),
            )
        seen[key] = line


def _construct_map(loader: _LineLoader, node: yaml.MappingNode):
    data = YamlMap(where=loader._loc(node))
    yield data
    _check_duplicates(loader, node)
    loader.flatten_mapping(node)  # `<<: *anchor` merge keys, as PyYAML's safe loader does
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        data[key] = loader.construct_object(value_node, deep=False)
        data.key_lines[key] = key_node.start_mark.line + 1


def _construct_seq(loader: _LineLoader, node: yaml.SequenceNode):
    data = YamlList(where=loader._loc(node))
    yield data
    for item in node.value:
        data.append(loader.construct_object(item, deep=False))
        data.item_lines.append(item.start_mark.line + 1)


def _construct_vault(loader: _LineLoader, node: yaml.Node) -> values.VaultStr | values.Sealed:
    if not isinstance(node, yaml.ScalarNode):
        raise InputError("!vault must tag a text (the output of ansible-vault "
                         "encrypt_string)", loader._loc(node))  # fmt: skip
    return values.tagged_value(node.value, loader._loc(node))


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)
_LineLoader.add_constructor("!vault", _construct_vault)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def check_expansion(root: yaml.Node, file: str) -> None:
    """Refuse a composed document whose aliases expand it by more than MAX_ALIAS_NODES
    nodes, or that contains itself. Linear in the distinct nodes: each node's expanded
    size is computed once (iteratively: a deeply nested document is no recursion)."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()  # on the path from the root: seen again means a cycle
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            open_nodes.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in _children(node))
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            raise YamlTooLarge(
                "an alias refers to a node that contains it (a recursive document): refused",
                Location(file, node.start_mark.line + 1),
            )
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)
    if sizes[id(root)] - len(sizes) > MAX_ALIAS_NODES:
        raise YamlTooLarge(
            f"aliases expand this document by more than {MAX_ALIAS_NODES} nodes (an alias "
            'bomb, "billion laughs"?): refused',
            Location(file),
        )


def _check_size(length: int, file: str) -> None:
    if length > MAX_YAML_BYTES:
        raise YamlTooLarge(
            f"too large: more than {MAX_YAML_BYTES} bytes, the most vnetctl reads in one "
            "inventory, playbook or variables file",
            Location(file),
        )


def _load_checked(loader: Any, file: str) -> Any:
    node = loader.get_single_node()
    if node is None:
        return None
    check_expansion(node, file)
    return loader.construct_document(node)


def safe_load_bounded(text: str, file: str = "<string>") -> Any:
    """`yaml.safe_load` (plain dicts and lists) with the bounds above; a syntax error is
    PyYAML's own exception, a bound is YamlTooLarge."""
    _check_size(len(text), file)
    loader = _BaseLoader(text)
    try:
        return _load_checked(loader, file)
    finally:
        loader.dispose()


def load_yaml_text(text: str, file: str, quiet: bool = False) -> Any:
    """Load one YAML document; errors name `file` and the line (`quiet`: and the
    column, with nothing of the text: see load_vars_file)."""
    _check_size(len(text), file)
    loader = _LineLoader(text)
    loader.file, loader.quiet = file, quiet
    try:
        return _load_checked(loader, file)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or "invalid YAML"
        if exc.context:
            problem = f"{exc.context}: {problem}"
        if quiet:
            problem = _QUOTED.sub("'...'", problem)
            problem += f" (column {mark.column + 1})" if mark is not None else ""
        raise InputError(f"YAML syntax error: {problem}", Location(file, line)) from None
    except yaml.YAMLError as exc:
        shown = "" if quiet else f": {exc}"
        raise InputError(f"YAML error{shown}", Location(file)) from None
    finally:
        loader.dispose()


# what PyYAML quotes of the text in its messages ('x', "x"): a key, a tag, a character
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


def load_vars_file(
    path: str | Path, what: str, context: str = "", identifiers: bool = True
) -> dict | None:
    """A file of variables: a mapping whose keys are variable names (`identifiers`:
    usable in templates; else strings, as an inventory's), or None when empty. Its
    errors never quote it: it may hold secrets, and its name may lead to a file that is
    not one (a symlink or a `..` to /etc/shadow)."""
    data = load_yaml_file(path, quiet=True)
    start = Location(str(path), 1)
    if data is None:
        return None
    if not isinstance(data, dict):
        raise InputError(f"{what} must be a mapping of variables, got a {type_name(data)}",
                         where(data, start), context)  # fmt: skip
    rule = "usable in templates (letters, digits, _)" if identifiers else "a string"
    for name in data:
        if not isinstance(name, str) or (identifiers and not name.isidentifier()):
            raise InputError(
                f"{what}: the variable name on this line is not {rule} (not shown: a file "
                "of variables may hold secrets)",
                where_of(data, name, start),
                context,
            )
    return data


def load_yaml_file(path: str | Path, quiet: bool = False) -> Any:
    """Load a YAML (or JSON) file; a missing or unreadable file is an InputError."""
    file = str(path)
    try:
        _check_size(Path(path).stat().st_size, file)
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("file not found", Location(file)) from None
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text ({exc.reason})", Location(file)) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", Location(file)) from None
    if cipher.is_vault(text):  # a vault-encrypted file: its errors never quote it
        return values.mark(load_yaml_text(values.file_text(text, file), file, quiet=True))
    return load_yaml_text(text, file, quiet)


def plain(value: Any) -> Any:
    """A deep copy as plain dicts and lists (no line information): for output and JSON."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value
