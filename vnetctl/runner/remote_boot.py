"""The program a host runs for one play: `python3 -I -S -c STUB`, the rest on stdin.

Line 1 of stdin is this file's source (read by STUB), line 2 the payload: the module
sources the play needs, its task list and the check flag. Results stream back on
stdout, one JSON object per line, as each task finishes. Nothing is written to the
host's disk. Runs on the host: Python 3.9+, standard library only.
"""

import json
import sys
import types

STUB = "import sys,json;exec(json.loads(sys.stdin.readline()))"
HOST_LIB = "vnet_host"


def install(name, source, filename=None):
    """Make `source` importable as `name` (modules import vnet_host by that name)."""
    module = types.ModuleType(name)
    module.__file__ = filename or "<vnetctl>/%s.py" % name
    sys.modules[name] = module  # as import does: the module can find itself while it runs
    try:
        exec(compile(source, module.__file__, "exec"), module.__dict__)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _emit(out, record):
    out.write(json.dumps(record, default=str) + "\n")
    out.flush()


def run_tasks(payload, out):
    for name, source in payload["libs"].items():  # vnet_host comes last
        install(name, source)
    host = sys.modules[HOST_LIB]
    modules = {
        name: install("vnet_module_" + name, source) for name, source in payload["modules"].items()
    }
    facts = host.Facts.gather()
    failed_at = None
    for task in payload["tasks"]:
        if failed_at is not None:
            result = {
                "skipped": True,
                "changed": False,
                "failed": False,
                "msg": "skipped: task %d failed on this host" % failed_at,
            }
        else:
            result = _run_one(host, modules[task["module"]], task, payload["check"], facts)
            if result.get("failed"):
                failed_at = task["index"]
        _emit(out, {"index": task["index"], "result": result})
    _emit(out, {"done": True})


def _run_one(host, module, task, check, facts):
    try:
        params = host.normalize_params(module.ARGUMENT_SPEC, task["args"])
        return host.execute(module, params, check, facts)
    except host.ModuleError as exc:
        return {"changed": False, "failed": True, "msg": str(exc)}
    except Exception:  # a module bug must not hide the other tasks' results
        import traceback  # only now: its import costs each host ~4 ms of start-up

        return {
            "changed": False,
            "failed": True,
            "msg": "module crashed:\n" + traceback.format_exc(limit=5),
        }


if __name__ == "__main__":
    run_tasks(json.loads(sys.stdin.readline()), sys.stdout)
