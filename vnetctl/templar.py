"""Jinja2 templating of task arguments and variables, with lazily resolved variables.

- Native types: `"{{ mtu }}"` gives the int 9000 when `mtu` is 9000, `"{{ ports }}"` a
  list. A template made of several parts (`"br-{{ vlan }}"`) gives a string. Unlike
  Jinja's own NativeEnvironment, a string result is never re-parsed as a Python literal
  (`"{{ name }}"` with name "010" stays "010"); argument validation converts "9000" to
  an int where the module wants an int.
- Undefined variables are errors (StrictUndefined), never empty strings.
- Sandboxed (Jinja's ImmutableSandboxedEnvironment rules): a template cannot reach
  Python internals (`__class__`, `__globals__`, any `_name`) nor change a value in
  place (`x.append(1)`, `d.update(...)`); it is refused with a TemplateFailure saying
  so. Inventories and playbooks are data, never code run on the controller.
- Variables are rendered when first used, like Ansible's: a play variable can refer to a
  host variable which refers to another. A variable that refers to itself, directly or
  not, is an error naming the loop (also for `x: "{{ x + 1 }}"`, as in Ansible: the
  lower-precedence `x` is not visible).
- Secrets (see vnetctl.secrets): a variable named or marked secret or holding decrypted
  vault text, and any variable or template whose rendering read one, is registered as
  a secret as it is rendered. A `!vault` value that could not be decrypted is an error
  where it is used (vnetctl.vault.values).
- A few of Ansible's filters: bool, ternary, combine, regex_replace, regex_search,
  to_json, from_json; and `omit`: an argument rendered to `{{ omit }}` is left out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from itertools import chain, islice
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, Undefined, UndefinedError, nodes
from jinja2.exceptions import SecurityError
from jinja2.nativetypes import NativeCodeGenerator, NativeEnvironment, NativeTemplate
from jinja2.sandbox import ImmutableSandboxedEnvironment

from vnetctl import filters, secrets
from vnetctl.errors import Location
from vnetctl.hostlib import parse_bool, type_name
from vnetctl.vault import values as vault_values

OMIT = "__vnetctl_omit_placeholder__"
MAX_DEPTH = 40  # variables referring to variables: deeper than this is surely a loop


class TemplateFailure(Exception):
    """A template could not be rendered; the caller adds file:line, host and context."""

    def __init__(self, message: str, via: list[str] | None = None):
        self.message = message
        self.via = via or []
        super().__init__(str(self))

    def __str__(self) -> str:
        if not self.via:
            return self.message
        return f"{self.message} (via {' <- '.join(self.via)})"


def is_template(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def has_templates(value: Any) -> bool:
    if isinstance(value, str):
        return is_template(value)
    if isinstance(value, dict):
        return any(has_templates(v) for v in value.values())
    if isinstance(value, list):
        return any(has_templates(v) for v in value)
    return False


def _concat(values: Iterable[Any]) -> Any:
    values = iter(values)
    head = list(islice(values, 2))
    if not head:
        return ""
    if len(head) == 1:
        return head[0]
    return "".join(str(v) for v in chain(head, values))


class _CodeGenerator(NativeCodeGenerator):
    """Folds only literal text at compile time. Jinja's native generator also folds
    constant expressions, as strings (`{{ false }}` -> "False", `{{ [1] }}` -> "[1]"),
    relying on literal_eval to undo it; here they are evaluated, keeping their type."""

    def _output_child_to_const(self, node: nodes.Expr, frame: Any, finalize: Any) -> Any:
        if isinstance(node, nodes.TemplateData):
            return node.as_const(frame.eval_ctx)
        raise nodes.Impossible()


class _Environment(ImmutableSandboxedEnvironment, NativeEnvironment):
    """The sandbox's attribute, item and call checks with native-typed results. The
    sandbox checks at run time (its getattr/getitem/call), so it holds with any code
    generator; ours folds only literal text, never an attribute access or a call."""

    code_generator_class = _CodeGenerator
    concat = staticmethod(_concat)  # type: ignore[assignment]

    def unsafe_undefined(self, obj: Any, attribute: str) -> Undefined:
        # Jinja names the Python class (YamlList, Cycler); say what a YAML user sees
        return self.undefined(
            f"access to attribute {attribute!r} of a {type_name(obj)} is unsafe",
            name=attribute,
            obj=obj,
            exc=SecurityError,
        )


class _Template(NativeTemplate):
    environment_class = _Environment


_Environment.template_class = _Template


def _bool_filter(value: Any) -> bool:
    parsed = False if value is None else parse_bool(value)
    if parsed is None:
        raise TemplateFailure(f"bool: cannot read {value!r} as true or false")
    return parsed


def _combine(*dicts: Mapping, recursive: bool = False) -> dict:
    result: dict = {}
    for d in dicts:
        for key, value in d.items():
            if recursive and isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
                result[key] = _combine(result[key], value, recursive=True)
            else:
                result[key] = value
    return result


def _regex_search(value: str, pattern: str) -> str | None:
    match = re.search(pattern, value)
    return match.group(0) if match else None


def make_environment() -> _Environment:
    env = _Environment(undefined=StrictUndefined, keep_trailing_newline=True)
    env.filters.update(
        bool=_bool_filter,
        ternary=lambda v, yes, no, none=None: (
            none if v is None and none is not None else (yes if v else no)
        ),
        combine=_combine,
        regex_replace=lambda v, pattern, repl="": re.sub(pattern, repl, str(v)),
        regex_search=_regex_search,
        to_json=lambda v, **kw: json.dumps(v, **kw),
        from_json=lambda v: json.loads(v),
    )
    env.filters.update(filters.FILTERS)
    for prefix in ("ansible.utils.", "ansible.builtin."):  # their FQCNs work too
        env.filters.update({prefix + n: f for n, f in filters.FILTERS.items()})
    env.globals.update(filters.GLOBALS)
    env.tests.update(RESULT_TESTS)
    env.tests.update(
        match=lambda v, pattern: re.match(pattern, str(v)) is not None,
        search=lambda v, pattern: re.search(pattern, str(v)) is not None,
    )
    return env


def _result_test(key: str, negate: bool = False):
    def test(result: Any) -> bool:
        if not isinstance(result, Mapping):
            raise TemplateFailure(f"`is {key}` applies to a registered result, got {result!r}")
        return bool(result.get(key)) != negate

    return test


# Ansible's tests of a registered result (a verb's, at planning; a host task's are
# evaluated on the host: vnetctl.playbook.runtime)
RESULT_TESTS = {
    "changed": _result_test("changed"),
    "failed": _result_test("failed"),
    "succeeded": _result_test("failed", negate=True),
    "success": _result_test("failed", negate=True),
    "skipped": _result_test("skipped"),
}


class Templar:
    """Renders values (recursively through lists and dicts) with a mapping of variables.

    Compiled templates are cached per Templar; make one per run, not per host."""

    def __init__(self) -> None:
        self.env = make_environment()
        self._compiled: dict[str, Any] = {}
        self.taint = secrets.Taint()

    def render(self, value: Any, variables: Mapping[str, Any]) -> Any:
        """Strings holding `{{`/`{%` are rendered; containers are copied as plain data.
        Decrypted vault text comes out as plain text, registered as a secret."""
        if isinstance(value, vault_values.VaultStr):
            secrets.registry().add(value)
            self.taint.read_secret()
            value = vault_values.unmarked(value)
        if isinstance(value, vault_values.Sealed):
            raise TemplateFailure(value.message())
        if isinstance(value, str):
            return self._render_str(value, variables) if is_template(value) else value
        if isinstance(value, dict):
            return {k: self.render(v, variables) for k, v in value.items()}
        if isinstance(value, list):
            return [self.render(v, variables) for v in value]
        return value

    def evaluate(self, expression: str, variables: Mapping[str, Any]) -> Any:
        """The value of a bare Jinja expression (as written in `when:`)."""
        return self._render_str("{{ " + expression + " }}", variables, shown=expression)

    def _render_str(self, source: str, variables: Mapping[str, Any], shown: str = "") -> Any:
        template = self._compiled.get(source)
        if template is None:
            try:
                template = self.env.from_string(source)
            except TemplateSyntaxError as exc:
                raise TemplateFailure(
                    f"template syntax error: {exc.message} in {shown or source!r}"
                ) from None
            self._compiled[source] = template
        context = template.new_context(_WithGlobals(variables, self.env.globals), shared=True)
        try:
            with self.taint.rendering() as reading:
                result = _defined(_concat(template.root_render_func(context)))
            if reading.secret:
                secrets.registry().add(result)
                result = vault_values.unmarked(result)
            return result
        except TemplateFailure:
            raise
        except SecurityError as exc:
            raise TemplateFailure(
                f"unsafe template refused: {str(exc).rstrip('.')} (templates may not reach "
                f"Python internals nor change values in place) in {shown or source!r}"
            ) from None
        except UndefinedError as exc:
            raise TemplateFailure(str(exc.message)) from None
        except Exception as exc:  # any failure of a user's template is bad input
            raise TemplateFailure(f"{exc} (in {shown or source!r})") from None


def _defined(value: Any) -> Any:
    """`value`, or UndefinedError when it is or holds an undefined variable (native
    rendering returns `{{ x }}` and `{{ [x] }}` without touching the Undefined)."""
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()  # an unsafe access raises its SecurityError
    if isinstance(value, list | tuple):
        for item in value:
            _defined(item)
    elif isinstance(value, dict):
        for item in value.values():
            _defined(item)
    return value


class _WithGlobals(Mapping[str, Any]):
    """The variables, then Jinja's globals (range, dict, namespace, ...)."""

    def __init__(self, variables: Mapping[str, Any], globals_: Mapping[str, Any]):
        self._vars, self._globals = variables, globals_

    def __contains__(self, key: object) -> bool:
        return key in self._vars or key in self._globals

    def __getitem__(self, key: str) -> Any:
        if key in self._vars:
            return self._vars[key]
        return self._globals[key]

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(chain(self._vars, self._globals)))

    def __len__(self) -> int:
        return len(dict.fromkeys(chain(self._vars, self._globals)))


class LazyVars(Mapping[str, Any]):
    """Variables rendered on first use. `raw`: name -> value as written (may hold
    templates); `fixed`: values used as they are (magic variables), which win.

    No public attributes besides the Mapping methods: in a template `hostvars[h].x`
    must find the variable `x`.

    Reading a secret variable (vnetctl.secrets: by name, by `vnetctl_secret_vars`, or
    because its own rendering read one) registers its value and marks every rendering
    in progress as reading a secret."""

    def __init__(
        self,
        templar: Templar,
        raw: Mapping[str, Any],
        fixed: Mapping[str, Any] | None = None,
        origins: Mapping[str, Location] | None = None,
    ):
        self._templar = templar
        self._raw = raw
        self._fixed = fixed or {}
        self._origins = origins or {}
        self._done: dict[str, Any] = {}
        self._resolving: list[str] = []
        self._derived: set[str] = set()  # rendered from a secret, or decrypted
        self._vault_checked: set[str] = set()
        self._marked: set[str] | None = None  # vnetctl_secret_vars, once read

    def __contains__(self, key: object) -> bool:
        return key in self._fixed or key in self._raw

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(chain(self._raw, self._fixed)))

    def __len__(self) -> int:
        return len(dict.fromkeys(chain(self._raw, self._fixed)))

    def __getitem__(self, key: str) -> Any:
        if key in self._fixed:
            return self._fixed[key]
        value = self._resolved(key)
        if self._is_secret(key):
            secrets.registry().add(value)
            self._templar.taint.read_secret()
        return value

    def register_secrets(self) -> None:
        """Read every secret variable, which registers its value (and what it renders
        to): for commands that render no task, so their output hides them too. One
        that cannot be rendered is skipped: only a rendered value can reach output."""
        for key in self._raw:
            try:
                if self._is_secret(key):
                    self[key]
            except TemplateFailure:
                continue

    def _is_secret(self, key: str) -> bool:
        if key == secrets.MARK_VAR:
            return False
        if secrets.is_secret_name(key) or key in self._derived:
            return True
        if key not in self._vault_checked and key in self._raw:
            self._vault_checked.add(key)  # walked once: a value may be a large mapping
            if vault_values.is_vaulted(self._raw[key]):
                self._derived.add(key)
                return True
        if self._marked is None:
            self._marked = set()  # while reading it, nothing more is marked
            value = self.get(secrets.MARK_VAR)
            names = secrets.marked_names(value)
            if names is None:
                raise TemplateFailure(
                    f"{secrets.MARK_VAR} must be a list of variable names, got {value!r}"
                )
            self._marked = names
        return key in self._marked

    def _resolved(self, key: str) -> Any:
        if key in self._done:
            return self._done[key]
        value = self._raw[key]
        sealed = vault_values.first_sealed(value)
        if sealed is not None:
            origin = self._origins.get(key)
            raise TemplateFailure(sealed.message(), [f"variable '{key}'" + (
                f" at {origin}" if origin else "")])  # fmt: skip
        if not has_templates(value):
            self._done[key] = value
            return value
        if key in self._resolving:
            loop = " -> ".join([*self._resolving[self._resolving.index(key) :], key])
            raise TemplateFailure(f"variable '{key}' refers to itself: {loop}")
        if len(self._resolving) >= MAX_DEPTH:
            raise TemplateFailure(f"variables nest more than {MAX_DEPTH} deep at '{key}'")
        self._resolving.append(key)
        try:
            with self._templar.taint.rendering() as reading:
                result = self._templar.render(value, self)
            if reading.secret:
                self._derived.add(key)
        except TemplateFailure as exc:
            origin = self._origins.get(key)
            exc.via.append(f"variable '{key}'" + (f" at {origin}" if origin else ""))
            raise
        finally:
            self._resolving.pop()
        self._done[key] = result
        return result
