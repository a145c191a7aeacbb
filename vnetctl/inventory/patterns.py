"""Ansible host patterns, for a play's `hosts:` and for `--limit`.

A pattern is a list of terms separated by commas or colons:

- `all` or `*`: every host; a host name; a group name (its hosts and its descendants');
- a shell glob on host and group names: `kvm*`, `rack?-h*`, `r[12]-*`;
- `~REGEX`: a Python regular expression matched at the start of host and group names;
- `&TERM`: intersection, `!TERM`: exclusion.
- `TERM[i]`, `TERM[-1]`, `TERM[i:j]` (j included), `TERM[i:]`: Ansible's subscripts, on the
  term's hosts in Ansible's order (a group: its own hosts, then its child groups' level
  by level; a glob: its groups', then its hosts'); `[x-y]` is refused (Ansible removed
  it); an index past the end is an error.

As in Ansible, plain terms are united first, then the `&` terms intersect, then the `!`
terms are removed, whatever order they are written in; a pattern of only `&`/`!` terms
starts from `all`. `--limit @FILE` reads one term per line (like Ansible's retry files).

Unlike Ansible, which warns and goes on, a term that names no host or group is an error
(`unknown host pattern 'x'`), also in --limit: a typo would otherwise target nothing, or
(after `!`) everything. A term that names an empty group is fine. The result is always
in inventory order.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from vnetctl.errors import InputError, Location


class _Group(Protocol):
    hosts: list[str]  # its hosts and its descendants'
    own_hosts: list[str]  # its direct members, in the order added


class Inventory(Protocol):
    """What a pattern is matched against (vnetctl.inventory.model.Inventory): host names
    in inventory order, and groups with their hosts."""

    @property
    def hosts(self) -> Mapping[str, object]: ...

    @property
    def groups(self) -> Mapping[str, _Group]: ...

    def child_groups(self, name: str) -> list[str]: ...


_GLOB = re.compile(r"[*?\[]")
_SUBSCRIPT = re.compile(r"^(.+)\[(?:(-?[0-9]+)|([0-9]+)([:-])([0-9]*))\]$")


def split_pattern(pattern: str, names: Collection[str] = ()) -> list[str]:
    """The terms of a pattern: 'a,b' and 'a:b' -> ['a', 'b'].

    Commas separate, then colons within each part, except in a `~regex`, inside `[...]`,
    and in a part that is one of `names` (an IPv6 address as a host name). Ansible does
    not split on colons once there is a comma, which makes `kvm,rack1:!h3` one unknown
    term `rack1:!h3`; here it means what it looks like."""
    terms = []
    for part in pattern.split(","):
        part = part.strip()
        if part.startswith("~") or part in names:
            terms.append(part)
        else:
            terms += _split_colons(part)
    return [t.strip() for t in terms if t.strip()]


def _split_colons(pattern: str) -> list[str]:
    """Split on ':' outside of [...] (glob character classes such as [0:9] stay whole)."""
    parts, current, depth = [], "", 0
    for char in pattern:
        if char == "[":
            depth += 1
        elif char == "]":
            depth = max(0, depth - 1)
        if char == ":" and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


def _terms(inventory: Inventory, pattern: str | Sequence[str]) -> list[str]:
    items = [pattern] if isinstance(pattern, str) else [str(p) for p in pattern]
    return [term for item in items for term in split_pattern(item, inventory.hosts)]


_BUILT_IN = ("all", "ungrouped")  # in every inventory: never what a typo meant
_LISTED = 8


def _unknown(term: str, inventory: Inventory, where: Location | None, context: str) -> InputError:
    groups = [g for g in inventory.groups if g not in _BUILT_IN]
    near = difflib.get_close_matches(term, [*inventory.hosts, *groups], n=3)
    if near:
        hint = f" (did you mean {', '.join(repr(n) for n in near)}?)"
    else:
        shown = ", ".join(groups[:_LISTED]) + (", ..." if len(groups) > _LISTED else "")
        hint = f": no host or group has that name (groups: {shown or 'none'})"
    return InputError(f"unknown host pattern '{term}'{hint}", where, context)


def match_term(
    inventory: Inventory, term: str, where: Location | None = None, context: str = ""
) -> set[str]:
    """Host names one term (without its `&`/`!` prefix) stands for."""
    base, subscript = _split_subscript(term, where, context)
    found = _matches(inventory, base, where, context)
    if subscript is None:
        return set(found)
    start, end = subscript
    if not found:
        return set()
    if end is None:
        if not -len(found) <= start < len(found):
            raise InputError(
                f"host pattern '{term}': {base} has {len(set(found))} hosts, no [{start}]",
                where,
                context,
            )
        return {found[start]}
    return set(found[start : (len(found) if end == -1 else end + 1)])


def _split_subscript(
    term: str, where: Location | None, context: str
) -> tuple[str, tuple[int, int | None] | None]:
    """`kvm[0]`, `kvm[-1]`, `kvm[0:2]` (both ends included, as in Ansible), `kvm[2:]`."""
    match = None if term.startswith("~") else _SUBSCRIPT.match(term)
    if not match:
        return term, None
    base, index, start, sep, end = match.groups()
    if index is not None:
        return base, (int(index), None)
    if sep == "-":
        raise InputError(
            f"host pattern '{term}': write [{start}:{end}] (Ansible removed [x-y])", where, context
        )
    return base, (int(start), int(end) if end else -1)


def _group_order(inventory: Inventory, name: str) -> list[str]:
    """A group's hosts in Ansible's order (what a subscript indexes): its own, then its
    child groups', level by level."""
    order, seen, level = [name], {name}, [name]
    while level:
        level = [k for g in level for k in inventory.child_groups(g) if k not in seen]
        seen.update(level)
        order += level
    hosts = [h for g in order for h in inventory.groups[g].own_hosts]
    return list(dict.fromkeys(hosts))


def _matches(inventory: Inventory, term: str, where: Location | None, context: str) -> list[str]:
    """Hosts of one term in Ansible's order: its groups' (in inventory order), then its
    hosts'. A host may come twice (in two groups), as for Ansible's subscripts."""
    if term in ("all", "*"):  # `*` matches `all` first: the same order
        return _group_order(inventory, "all")
    if term in inventory.groups or term in inventory.hosts:
        found = _group_order(inventory, term) if term in inventory.groups else []
        return found + ([term] if term in inventory.hosts and term not in found else [])
    if term.startswith("~"):
        try:
            regex = re.compile(term[1:])
        except re.error as exc:
            msg = f"invalid regex in host pattern '{term}': {exc}"
            raise InputError(msg, where, context) from None
        matches = regex.match
    elif _GLOB.search(term):
        matches = re.compile(fnmatch.translate(term)).match
    else:
        raise _unknown(term, inventory, where, context)
    groups = [g for g in inventory.groups if matches(g)]
    hosts = [h for h in inventory.hosts if matches(h)]
    if not hosts and not groups:
        raise _unknown(term, inventory, where, context)
    return [h for g in groups for h in _group_order(inventory, g)] + hosts


def evaluate(
    inventory: Inventory,
    pattern: str | Sequence[str],
    where: Location | None = None,
    context: str = "",
) -> set[str]:
    """The set of host names a pattern stands for (every term is checked)."""
    terms = _terms(inventory, pattern)
    if not terms:
        raise InputError("empty host pattern", where, context)
    plain = [t for t in terms if t[0] not in "&!"]
    both = [t[1:].strip() for t in terms if t[0] == "&"]
    minus = [t[1:].strip() for t in terms if t[0] == "!"]
    result: set[str] = set()
    for term in plain or ["all"]:
        result |= match_term(inventory, term, where, context)
    for term in both:
        result &= match_term(inventory, term, where, context)
    for term in minus:
        result -= match_term(inventory, term, where, context)
    return result


def _evaluate_limit(inventory: Inventory, limit: str) -> set[str]:
    """--limit PATTERN, or --limit @FILE: one pattern per line (# comments), united."""
    if not limit.startswith("@"):
        return evaluate(inventory, limit, None, "--limit")
    path = Path(limit[1:])
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise InputError(f"cannot read --limit file: {exc.strerror}", Location(str(path))) from None
    result: set[str] = set()
    for number, line in enumerate(lines, 1):
        if line.split("#", 1)[0].strip():
            at = Location(str(path), number)
            result |= evaluate(inventory, line.split("#", 1)[0], at, "--limit")
    return result


def select_names(
    inventory: Inventory,
    pattern: str | Sequence[str],
    limit: str | None = None,
    *,
    where: Location | None = None,
    context: str = "",
) -> list[str]:
    """Host names matching `pattern` and `limit`, in inventory order."""
    chosen = evaluate(inventory, pattern, where, context)
    if limit is not None and limit.strip():
        chosen &= _evaluate_limit(inventory, limit.strip())
    return [h for h in inventory.hosts if h in chosen]
