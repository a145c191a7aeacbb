"""The play on a host: its tasks in order, under the management-path guard and, when
asked, commit confirmed (safe_apply). Part of the program a host runs for a play
(boot.py), shipped in the play's payload and installed as `vnet_play` after the host
library. Runs on the host: Python 3.9+, standard library only.
"""

import sys

CONDITIONS = "vnet_conditions"  # conditions on registered results (conditions.py)


class Fatal(Exception):
    """The play cannot go on: reported as its `fatal` record at `stage`."""

    def __init__(self, stage, msg):
        super().__init__(msg)
        self.stage = stage


def run_play(host, modules, payload, output, stop, lock):
    """The play's tasks in order, their records on `output`; True when asked to stop
    before the last. Raises Fatal when the play cannot go on (commit confirmed refused)."""
    core = sys.modules["vnet_core"]
    core.TRACE = [] if payload.get("trace") else None  # run -vvv: see vnet_core.run
    facts = host.Facts.gather(modules=list(modules.values()))
    confirm, guard = None, None
    safety = sys.modules.get("vnet_safety")  # the management-path guard (host library)
    server, client = payload.get("server"), payload.get("client")
    if not payload["check"] and payload.get("confirm"):  # see vnetctl/hostside/safe_apply.py
        safe = sys.modules["vnet_safe_apply"]  # installed with the play's code (boot._load)
        if lock.mode != "borrowed":  # the lock's holder collects what earlier runs left
            earlier = sys.modules["vnet_confirm_files"].leftovers(payload["confirm"].get("root"))
            if earlier:
                output.emit({"earlier": earlier})
        confirm = safe.Confirm(payload["confirm"], host, modules, lock, output)
        guard = safety.Guard(server, confirm.arm_for_step, confirm.explicit, host.ModuleError,
                             client)  # fmt: skip
    elif safety is not None:  # check mode: classified and refused as the real run would
        explicit = bool((payload.get("confirm") or {}).get("explicit"))
        guard = safety.Guard(server, None, explicit, host.ModuleError, client, check=True)
    planned = [t for t in payload["tasks"] if t["module"] in modules and "result" not in t]
    for task in planned:  # arguments checked once, for every reader below
        try:
            task["args"] = host.checked_params(modules[task["module"]], task["args"])
        except host.ModuleError:
            pass  # the task says so when it runs
    # under a rollback timer nothing is refused (drift, too, only compares)
    guarded = guard is not None and not guard.explicit
    refused = safety.preflight(host, modules, planned, facts, guard) if guarded else None
    if refused is not None:  # before any change: the play does not start on this host
        index, msg, found = refused
        output.emit({"refused": {"index": index, "msg": msg, "management_path": found}})
        return False
    persist = sys.modules.get("vnet_persist")  # boot persistence (host library)
    persisting = persist.configure(payload.get("persist")) if persist is not None else None
    failed_at, started, registered = None, 0, {}
    conditions = sys.modules.get(CONDITIONS)  # shipped for plays that need it (payload.py)
    blocks = conditions.Blocks() if conditions is not None else None
    # check mode: later tasks know what earlier ones would make (vnet_upcoming)
    upcoming = sys.modules["vnet_upcoming"].Upcoming() if payload["check"] else None
    for task in payload["tasks"]:
        if stop.is_set():
            return True
        if blocks is not None:
            failed_at = _rescued(blocks.leave(task), output, failed_at)
        skip = (
            blocks.skip(task, failed_at)
            if blocks is not None
            else (None if failed_at is None else "skipped: an earlier task failed on this host")
        )
        if skip is not None:
            result = {"skipped": True, "changed": False, "failed": False, "msg": skip}
            if failed_at is not None and (blocks is None or blocks.failing is None):
                result["skipped_after"] = failed_at
        else:
            if not stop.may_start(started, payload.get("window")):
                return True
            started += 1
            output.emit({"start": task["index"]})
            journal = None
            result = conditions.decided(task, registered) if conditions else task.get("result")
            if result is not None:
                pass  # a verb the controller ran, or a task its `when` skips here
            elif confirm is not None:
                try:
                    confirm.record(task, modules[task["module"]], facts)
                except safe.ArmError as exc:  # asked for: armed before the first change
                    raise Fatal("confirm", "refused before any change: %s" % exc) from None
                except safe.JournalError as exc:
                    result = {"changed": False, "failed": True,
                              "msg": "refused before any change: %s" % exc}  # fmt: skip
                    output.emit({"index": task["index"], "result": result})
                    failed_at = task["index"]
                    continue
                if persisting is not None:  # a rollback restores the task's files too
                    journal = confirm.files_journal(task["index"], persisting[0]["root"])
            if result is None:
                result = run_one(host, modules[task["module"]], task, payload["check"], facts,
                                 guard, persisting, journal)  # fmt: skip
                if upcoming is not None:
                    result = upcoming.pending(modules[task["module"]], task["args"], result)
                    upcoming.record(task["index"], result, facts)
                if conditions is not None:
                    conditions.judged(task, result, registered)
            if core.TRACE is not None:  # -vvv: what ran since the task before (facts too)
                result["ran"], core.TRACE = core.TRACE, []
            if task.get("register"):
                _register(registered, task, result)
            if result.get("failed") and blocks is not None:
                blocks.failed(task)
            if result.get("failed"):
                failed_at = task["index"] if failed_at is None else failed_at
        output.emit({"index": task["index"], "result": result})
    if blocks is not None:
        _rescued(blocks.leave({}), output, failed_at)
    return False


def _register(registered, task, result):
    """A task's result under its register name; a loop's items under `results`."""
    name, loop = task["register"], task.get("loop_of")
    if loop is None:
        registered[name] = result
        return
    kept = registered.get(name)
    if not (isinstance(kept, dict) and kept.get("_loop") == loop):  # the loop's first item
        kept = registered[name] = {"results": [], "changed": False, "failed": False,
                                   "skipped": False, "_loop": loop}  # fmt: skip
    kept["results"].append(result)
    kept["changed"] = kept["changed"] or bool(result.get("changed"))
    kept["failed"] = kept["failed"] or bool(result.get("failed"))


def _rescued(indexes, output, failed_at):
    """A block's rescue ended well: its failures are cleared, the play goes on."""
    if not indexes:
        return failed_at
    output.emit({"rescued": indexes})
    return None


def run_one(host, module, task, check, facts, guard=None, persisting=None, journal=None):
    try:
        params = host.checked_params(module, task["args"])  # checked: as it is
        result = host.execute(module, params, check, facts, guard=guard)
        if persisting is not None and hasattr(module, "persist") and not result.get("failed"):
            sys.modules["vnet_persist"].after_task(module, params, result, check, facts,
                                                   persisting, journal)  # fmt: skip
            if result.get("failed") and result.get("changes") and not check:
                # its files could not be written (none were): the task is undone whole
                result["msg"] += host.roll_back(module, params, result["diff"]["before"], facts)
        return result
    except host.ModuleError as exc:
        return {"changed": False, "failed": True, "msg": str(exc)}
    except Exception:  # a module bug must not hide the other tasks' results
        import traceback  # noqa: PLC0415 (its import costs each host ~4 ms of start-up)

        return {
            "changed": False,
            "failed": True,
            "msg": "module crashed:\n" + traceback.format_exc(limit=5),
        }
