"""Conditions a host evaluates itself: a task's `when`, `changed_when` and
`failed_when` that read a result registered earlier in the same play (`register`),
which the controller cannot know when it plans. The controller compiles them
(vnetctl/playbook/runtime.py) into small trees of lists; this file evaluates those
trees, and nothing else: no names but registered results, no calls, no attributes
but keys. Runs on the host: Python 3.9+, standard library only.

    ["const", value]            ["var", name, [key, ...]]   a registered result's field
    ["list", [tree, ...]]       ["not", tree]   ["and", a, b]   ["or", a, b]
    ["cmp", op, a, b]           op: eq ne lt gt lteq gteq in notin
    ["test", name, tree]        changed failed succeeded success skipped defined undefined
    ["filter", name, tree]      length int trim lower bool
"""


class ConditionError(Exception):
    """A condition that cannot be evaluated: the task fails with this text."""


class FromSkipped(ConditionError):
    """The condition reads a field of a result that was skipped (a command in check
    mode): the task that reads it is skipped too."""


class _Missing:
    """A field a result does not have: only `is defined` / `is undefined` read it."""


MISSING = _Missing()


def _field(registered, name, keys):
    if name not in registered:
        return MISSING
    value = registered[name]
    if keys and isinstance(value, dict) and value.get("skipped") and keys[0] not in value:
        raise FromSkipped("%s was skipped" % name)
    for key in keys:
        listed = isinstance(value, list) and isinstance(key, int)
        if not (
            (isinstance(value, dict) and key in value)
            or (listed and -len(value) <= key < len(value))
        ):
            return MISSING
        value = value[key]
    return value


def _test(name, value):
    if name in ("defined", "undefined"):
        return (value is not MISSING) == (name == "defined")
    if not isinstance(value, dict):
        raise ConditionError("`is %s` applies to a registered result" % name)
    if name in ("succeeded", "success"):
        return not value.get("failed")
    return bool(value.get(name))


def _bool(value):
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("yes", "on", "1", "true", "y", "t"):
            return True
        if lowered in ("no", "off", "0", "false", "n", "f", ""):
            return False
        raise ConditionError("bool: cannot read %r as true or false" % value)
    return bool(value)


FILTERS = {
    "length": len,
    "int": lambda v: int(str(v).strip() or 0),
    "trim": lambda v: str(v).strip(),
    "lower": lambda v: str(v).lower(),
    "bool": _bool,
}
COMPARE = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "lt": lambda a, b: a < b,
    "gt": lambda a, b: a > b,
    "lteq": lambda a, b: a <= b,
    "gteq": lambda a, b: a >= b,
    "in": lambda a, b: a in b,
    "notin": lambda a, b: a not in b,
}


def value(tree, registered):
    kind = tree[0]
    if kind == "const":
        return tree[1]
    if kind == "var":
        found = _field(registered, tree[1], tree[2])
        return found
    if kind == "list":
        return [value(item, registered) for item in tree[1]]
    if kind == "test":
        return _test(tree[1], value(tree[2], registered))
    if kind == "not":
        return not holds_value(tree[1], registered)
    if kind == "and":
        return holds_value(tree[1], registered) and holds_value(tree[2], registered)
    if kind == "or":
        return holds_value(tree[1], registered) or holds_value(tree[2], registered)
    operands = []
    for source in tree[2:]:
        operands.append(value(source, registered))
        if operands[-1] is MISSING:
            raise ConditionError("%s is undefined" % _name(source))
    try:
        if kind == "cmp":
            return COMPARE[tree[1]](*operands)
        if kind == "filter":
            return FILTERS[tree[1]](*operands)
    except (TypeError, ValueError) as exc:
        raise ConditionError("%s: %s" % (tree[1], exc)) from None
    raise ConditionError("unknown condition %r" % (kind,))


def holds_value(tree, registered):
    result = value(tree, registered)
    if result is MISSING:
        raise ConditionError("%s is undefined" % _name(tree))
    if not isinstance(result, bool):
        raise ConditionError("gave %s %r, not true or false" % (type(result).__name__, result))
    return result


def holds(trees, registered):
    """Every tree holds (a task's `when`: all of them must)."""
    return all(holds_value(tree, registered) for tree in trees)


def _name(tree):
    if tree[0] == "var":
        return ".".join([tree[1], *map(str, tree[2])])
    return "a value"


class Blocks:
    """block/rescue/always as Ansible runs them, on tasks marked [block number, part,
    has rescue]: a failed task of a block (rolled back whole by the engine) skips the
    rest of the block, its rescue runs, then its always; a rescue that ends without a
    failure clears the block's failure (reported `rescued`) and the play goes on."""

    def __init__(self):
        self.failing, self.rescue_ok, self.indexes = None, True, []

    def leave(self, task):
        """Call before each task (and with {} at the end): the indexes of the failed
        tasks a rescue has just cleared, on leaving their block."""
        block = task.get("block")
        if self.failing is None or (block is not None and block[0] == self.failing[0]):
            return []
        done = self.indexes if self.failing[2] and self.rescue_ok else []
        self.failing, self.rescue_ok, self.indexes = None, True, []
        return done

    def skip(self, task, failed_at):
        """Why the task does not run here (text), or None."""
        block = task.get("block")
        if self.failing is not None:
            if block[1] == "always" or (block[1] == "rescue" and self.rescue_ok):
                return None
            return "skipped: an earlier task of its block failed"
        if failed_at is not None:
            return "skipped: an earlier task failed on this host"
        if block is not None and block[1] == "rescue":
            return "skipped: a rescue runs only when its block fails"
        return None

    def failed(self, task):
        block = task.get("block")
        if block is None:
            return
        if self.failing is None and block[1] == "block":
            self.failing, self.indexes = block, [task["index"]]
        elif self.failing is not None:
            self.rescue_ok = False


def decided(task, registered):
    """The result of a task decided without running a module: a verb the controller ran
    (an assert on a registered result is evaluated here), or a `when` that reads a
    registered result and does not hold (see conditions.py); None: run it."""
    try:
        if task.get("host_when") and not holds(task["host_when"], registered):
            return {"skipped": True, "changed": False, "failed": False,
                    "msg": "skipped: its condition does not hold"}  # fmt: skip
        verb = task.get("result")
        if verb is None or "that_on_host" not in verb:
            return dict(verb) if verb is not None else None
        passed = holds(verb["that_on_host"], registered)
    except FromSkipped as exc:
        return {"skipped": True, "changed": False, "failed": False, "msg": "skipped: %s" % exc}
    except ConditionError as exc:
        return {"changed": False, "failed": True, "msg": "condition: %s" % exc}
    return {"changed": False, "failed": not passed, "shown": verb["shown"] or not passed,
            "verb": True, "msg": verb["success_msg"] if passed else verb["fail_msg"]}  # fmt: skip


def judged(task, result, registered):
    """A command's changed_when / failed_when, read with its own result registered."""
    if not (task.get("changed_when") or task.get("failed_when")) or result.get("skipped"):
        return
    seen = dict(registered, **{task["register"]: result})
    try:
        if task.get("changed_when"):
            result["changed"] = holds(task["changed_when"], seen)
        if task.get("failed_when"):
            result["failed"] = holds(task["failed_when"], seen)
            if not result["failed"] and result.get("msg", "").startswith("non-zero return code"):
                result["msg"] = "rc=%s (failed_when does not hold)" % result.get("rc")
    except ConditionError as exc:
        result.update(failed=True, msg="condition: %s" % exc)
