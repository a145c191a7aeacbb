"""vnetctl's modules as the Ansible collection `vnetctl.kvm`: the collection's tree,
generated from `modules/` (the same files vnetctl pushes; no second copy of any module's
logic is kept), ready for `ansible-galaxy collection build`.

    python scripts/build_collection.py OUT_DIR    # OUT_DIR/ansible_collections/vnetctl/kvm

What changes on the way: the imports of the host library name it where a collection
keeps it (`from ansible.module_utils import vnet_x` becomes `from ansible_collections.
vnetctl.kvm.plugins.module_utils import vnet_x`), the shebang is `#!/usr/bin/python`
(Ansible picks the interpreter), and each module gets DOCUMENTATION
(generated from its ARGUMENT_SPEC and docstring), EXAMPLES and RETURN. Modules keep
reading their arguments as they do under ansible-playbook (vnet_host.ansible_main).
`host_command` stays out: Ansible has its own `command`.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vnetctl import __version__  # noqa: E402
from vnetctl.catalog import Catalog  # noqa: E402

NAMESPACE, NAME = "vnetctl", "kvm"
UTILS = f"ansible_collections.{NAMESPACE}.{NAME}.plugins.module_utils"
LEFT_OUT = {"host_command"}  # Ansible's own command does this
# vnetctl's name types are strings to Ansible
TYPES = {"ifname": "str", "meshname": "str", "objname": "str", "ipaddr": "str",
         "ipdest": "str", "rtable": "str"}  # fmt: skip
TYPE_WORDS = {"ifname": "an interface name (the kernel's rules)", "meshname": "a mesh name",
              "objname": "a name (one word)", "ipaddr": "an IP address (a next hop)",
              "ipdest": "a route's destination", "rtable": "a routing table"}  # fmt: skip


def rewrite_imports(source: str) -> str:
    if source.startswith("#!/usr/bin/python3\n"):  # the form ansible-test's sanity wants
        source = "#!/usr/bin/python\n" + source.removeprefix("#!/usr/bin/python3\n")
    source = source.replace("from ansible.module_utils import", f"from {UTILS} import")
    return re.sub(r"from ansible\.module_utils\.(vnet_\w+)", rf"from {UTILS}.\1", source)


def options(spec: dict) -> dict:
    out = {}
    for name, rule in spec.items():
        kind = rule.get("type", "str")
        text = [f"`{name}`" + (f": {TYPE_WORDS[kind]}" if kind in TYPE_WORDS else ".")]
        if rule.get("range"):
            text.append("From {} to {}.".format(*rule["range"]))
        if rule.get("controller"):
            text.append("Read by vnetctl on the controller (fleet-wide); ignored here.")
        option: dict = {"description": text, "type": TYPES.get(kind, kind)}
        if rule.get("required"):
            option["required"] = True
        for key in ("default", "choices", "elements"):
            if rule.get(key) is not None:
                option[key] = TYPES.get(rule[key], rule[key]) if key == "elements" else rule[key]
        if isinstance(rule.get("options"), dict):
            option["suboptions"] = options(rule["options"])
        out[name] = option
    return out


def documentation(name: str, module) -> str:
    doc = (module.__doc__ or name).strip()
    paragraphs = [" ".join(p.split()) for p in doc.split("\n\n") if p.strip()]
    data = {
        "module": name,
        "short_description": paragraphs[0].split(". ")[0].rstrip(".")[:160],
        "version_added": "0.1.0",
        "description": paragraphs,
        "author": ["vnetctl"],
        "notes": ["Supports check mode; returns `changes` (field, before, after) and a diff."],
        "options": options(module.ARGUMENT_SPEC),
    }
    return yaml.safe_dump(data, sort_keys=False, width=90)


RETURN = yaml.safe_dump({
    "changes": {"description": "One entry per field that differs: field, before, after.",
                "returned": "always", "type": "list", "elements": "dict"},
    "resource": {"description": "What the task is about, e.g. `bridge br-vm`.",
                 "returned": "always", "type": "str"},
    "commands": {"description": "The commands run (or, in check mode, that would run).",
                 "returned": "changed", "type": "list", "elements": "str"},
}, sort_keys=False)  # fmt: skip


def example(name: str, spec: dict) -> str:
    required = {k: f"<{k}>" for k, r in spec.items() if r.get("required")}
    return yaml.safe_dump([{"name": f"{name} example", f"{NAMESPACE}.{NAME}.{name}": required}],
                          sort_keys=False)  # fmt: skip


def with_docs(source: str, name: str, module) -> str:
    """The module's source with DOCUMENTATION, EXAMPLES and RETURN after its docstring."""
    tree = ast.parse(source)
    first = tree.body[0]
    end = first.end_lineno if isinstance(first, ast.Expr) else 0
    lines = source.splitlines(keepends=True)
    block = "".join(
        f"\n{key} = r'''\n{text}'''\n"
        for key, text in (("DOCUMENTATION", documentation(name, module)),
                          ("EXAMPLES", example(name, module.ARGUMENT_SPEC)), ("RETURN", RETURN))
    )  # fmt: skip
    return "".join(lines[:end]) + block + "".join(lines[end:])


def build(out: Path) -> Path:
    catalog = Catalog(ROOT / "modules")
    top = out / "ansible_collections" / NAMESPACE / NAME
    (top / "plugins" / "modules").mkdir(parents=True, exist_ok=True)
    (top / "plugins" / "module_utils").mkdir(parents=True, exist_ok=True)
    (top / "meta").mkdir(exist_ok=True)
    for name in catalog:
        if name in LEFT_OUT:
            continue
        source = rewrite_imports(catalog.source(name))
        text = with_docs(source, name, catalog.load(name))
        (top / "plugins" / "modules" / f"{name}.py").write_text(text)
    for path in sorted((ROOT / "modules" / "module_utils").glob("vnet_*.py")):
        (top / "plugins" / "module_utils" / path.name).write_text(rewrite_imports(path.read_text()))
    (top / "plugins" / "module_utils" / "__init__.py").write_text("")
    (top / "meta" / "runtime.yml").write_text('requires_ansible: ">=2.15.0"\n')
    galaxy = {
        "namespace": NAMESPACE, "name": NAME, "version": __version__, "readme": "README.md",
        "authors": ["vnetctl"], "license": ["Apache-2.0"],
        "description": "vnetctl's modules: Linux bridges, bonds, VLANs, port groups, MTU, "
                       "VXLAN meshes, tc shaping and Open vSwitch on KVM hosts",
        "tags": ["networking", "kvm", "openvswitch", "linux"],
        "build_ignore": ["*.tar.gz", "tests/output"],
    }  # fmt: skip
    (top / "galaxy.yml").write_text(yaml.safe_dump(galaxy, sort_keys=False))
    (top / "README.md").write_text(
        "# vnetctl.kvm\n\nvnetctl's modules, generated from its `modules/` by "
        "`scripts/build_collection.py`: the same files vnetctl pushes to KVM hosts.\n"
    )
    return top


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: build_collection.py OUT_DIR")
    print(build(Path(sys.argv[1])))
