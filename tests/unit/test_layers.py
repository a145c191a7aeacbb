"""docs/architecture.md's layers, held against the code's imports.

The layer list (the first block under "## The layers") names, top to bottom, the
packages and modules of vnetctl/; a module may import its own layer and those below it,
never one above. Every `import` and `from ... import` counts, wherever it stands (inside
a function, under TYPE_CHECKING): a deferred import is still a dependency. What a
registry loads by name (importlib) is not an import: that is how a lower layer finds
what registers itself above it (fleet expanders and gates, transports).

No modules import each other in a circle, through others or inside one package; and
no file of vnetctl/ reaches MAX_LINES.

`python tests/unit/test_layers.py` prints the figures: modules, layers, cycles, imports
that run up a layer.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]
PACKAGE = "vnetctl"
DOC = ROOT / "docs" / "architecture.md"


def modules(root: Path = ROOT) -> dict[str, Path]:
    """Dotted name -> file, for every module of the package (a package by its __init__)."""
    found = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imported(node: ast.AST, package: str) -> list[str]:
    """The dotted names an import statement reaches (`from a import b`: a.b, which is
    a module or a name in module a)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:
        parent = package.split(".")[: len(package.split(".")) - node.level + 1]
        base = ".".join([*parent, base] if base else parent)
    return [f"{base}.{alias.name}" for alias in node.names]


def imports(root: Path = ROOT) -> dict[str, set[str]]:
    """Module -> the modules of the package it imports."""
    known = modules(root)
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            for dotted in _imported(node, package):
                while dotted and dotted not in known:  # a name in a module: the module
                    dotted = dotted.rpartition(".")[0]
                if dotted and dotted != name:
                    targets.add(dotted)
        graph[name] = targets
    return graph


def layers(doc: Path = DOC) -> list[str]:
    """The layer list, top first: paths such as "vnetctl/fleet/" or "vnetctl/catalog.py"."""
    text = doc.read_text()
    block = re.search(r"^## The layers\n.*?^```\n(.*?)^```", text, re.DOTALL | re.MULTILINE)
    assert block, f"{doc}: no layer list under '## The layers'"
    return re.findall(rf"^({PACKAGE}/\S*)", block.group(1), re.MULTILINE)


def layer_of(name: str, path: Path, order: list[str], root: Path = ROOT) -> int | None:
    """The index of the module's layer: the longest listed path that holds it."""
    where = path.relative_to(root).as_posix()
    held = [i for i, layer in enumerate(order)
            if where == layer or (layer.endswith("/") and where.startswith(layer))]  # fmt: skip
    return max(held, key=lambda i: len(order[i]), default=None)


def upward(root: Path = ROOT, doc: Path = DOC) -> list[tuple[str, str]]:
    """(importer, imported) for each import of a layer above the importer's."""
    order, known = layers(doc), modules(root)
    level = {name: layer_of(name, path, order, root) for name, path in known.items()}
    return sorted(
        (name, target)
        for name, targets in imports(root).items()
        for target in targets
        if None not in (level[name], level[target]) and level[target] < level[name]
    )


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm,
    iterative), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


def figures(root: Path = ROOT, doc: Path = DOC) -> dict[str, int]:
    known, order = modules(root), layers(doc)
    unlisted = [n for n, p in known.items() if layer_of(n, p, order, root) is None]
    return {
        "modules": len(known),
        "packages": len({n for n, p in known.items() if p.name == "__init__.py"}),
        "layers": len(order),
        "modules in no layer": len(unlisted),
        "imports": sum(len(t) for t in imports(root).values()),
        "cycles": len(cycles(imports(root))),
        "imports up a layer": len(upward(root, doc)),
    }


def test_every_module_is_in_a_layer():
    order = layers()
    unlisted = [name for name, path in modules().items() if layer_of(name, path, order) is None]
    assert unlisted == [], "add them to the layer list of docs/architecture.md"


def test_every_layer_listed_exists():
    assert [layer for layer in layers() if not (ROOT / layer).exists()] == []


def test_nothing_imports_a_layer_above_it():
    assert upward() == []


def test_no_modules_import_each_other_in_a_circle():
    assert cycles(imports()) == []


MAX_LINES = 400  # a file past it holds more than one concern: split it by concern


def test_every_file_of_the_controller_is_under_the_size_of_one_concern():
    sizes = {str(path.relative_to(ROOT)): len(path.read_text().splitlines())
             for path in modules().values()}  # fmt: skip
    assert {name: size for name, size in sizes.items() if size >= MAX_LINES} == {}


# what planning with the host library takes; only the facade names it (vnetctl.catalog)
HOST_LIBRARY_NAMES = {"host_lib", "Facts", "normalize_params", "desired", "diff_fields",
                      "ModuleError", "vnet_params"}  # fmt: skip
FACADE = {"vnetctl.catalog", "vnetctl.hostlib"}


def test_the_controller_plans_only_through_the_catalog():
    """The fleet's preflights, snapshots, drift and validation plan through
    Catalog.plan/facts/read/flatten and hostlib.rules: no second copy of plan()."""
    found = []
    for name, path in modules().items():
        if name in FACADE or name.startswith(f"{PACKAGE}.hostside"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in HOST_LIBRARY_NAMES:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: .{node.attr}")
    assert found == []


def test_the_check_sees_circles_and_imports_up(tmp_path):
    """The checks themselves, on a package made for them: a relative import, one under
    a function, a circle of three and an import up the layer list."""
    package = tmp_path / PACKAGE
    (package / "low").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "top.py").write_text("TOP = 1\n")
    (package / "low" / "__init__.py").write_text("")
    (package / "low" / "a.py").write_text("from . import b\n")
    (package / "low" / "b.py").write_text("def f():\n    import vnetctl.low.c\n")
    (package / "low" / "c.py").write_text("from vnetctl.low.a import X\nimport vnetctl.top\n")
    doc = tmp_path / "architecture.md"
    doc.write_text(
        "## The layers\n\n```\nvnetctl/top.py  the top\nvnetctl/low/  below it\n"
        "vnetctl/__init__.py\n```\n"
    )
    graph = imports(tmp_path)
    assert cycles(graph) == [["vnetctl.low.a", "vnetctl.low.b", "vnetctl.low.c"]]
    assert upward(tmp_path, doc) == [("vnetctl.low.c", "vnetctl.top")]


if __name__ == "__main__":
    for key, value in figures().items():
        print(f"{key}: {value}")
    for component in cycles(imports()):
        print("cycle:", " -> ".join(component))
    for importer, imported in upward():
        print("up:", importer, "->", imported)
    sys.exit(0)
