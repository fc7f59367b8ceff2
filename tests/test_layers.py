"""The package's layers, read from every import statement of src/fastbp (lazy imports inside functions too).

kernels -> engine -> nn -> {integrations, tutorial}: a module imports only from layers below its own and from its
own layer; ``config`` and ``errors`` are below everything; the package's ``__init__`` and the two modules that
keep documented names (``fastbp.sklearn``, ``fastbp.distributed``) sit on top.  No module imports another that
imports it back, directly or through others.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "fastbp"
LAYERS = {"config": 0, "errors": 0, "kernels": 1, "engine": 2, "nn": 3, "integrations": 4, "tutorial": 4}
TOP = {"fastbp", "fastbp.__main__", "fastbp.sklearn", "fastbp.distributed", "fastbp.jit"}


def module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path):
    """The fastbp modules that ``path`` imports (absolute names), each with its line."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names if alias.name.split(".")[0] == "fastbp"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.split(".")[0] != "fastbp":
                continue
            for alias in node.names:  # `from fastbp.nn import persistence` imports the module fastbp.nn.persistence
                sub = f"{module}.{alias.name}"
                found.append((sub if (PACKAGE.parent / sub.replace(".", "/")).with_suffix(".py").exists() or (
                    PACKAGE.parent / sub.replace(".", "/")).is_dir() else module, node.lineno))  # fmt: skip
    return found


def layer(module):
    if module in TOP:
        return 99
    return LAYERS[module.split(".")[1]]


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def test_every_module_is_in_a_layer():
    for module in MODULES:
        assert module in TOP or module.split(".")[1] in LAYERS, f"{module} is in no layer: add it to LAYERS or move it"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down(module):
    mine = layer(module)
    for imported, line in imports_of(MODULES[module]):
        if imported == "fastbp":
            assert module in TOP, f"{module}:{line} imports the package itself (everything): import what it needs"
            continue
        theirs = layer(imported)
        same_layer = theirs == mine and imported.split(".")[1] == module.split(".")[1]
        assert theirs < mine or same_layer, f"{module}:{line} imports {imported}, a layer above or beside it"


def test_no_import_cycles():
    graph = {m: {i for i, _ in imports_of(p) if i in MODULES and i != m} for m, p in MODULES.items()}
    state = {}

    def visit(m, path):
        state[m] = "open"
        for n in sorted(graph[m]):
            if n.startswith(m + ".") or m.startswith(n + "."):  # a package and its own modules
                continue
            if state.get(n) == "open":
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(n) :] + [n]))
            if n not in state:
                visit(n, path + [n])
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])


def test_engine_is_private_by_module_name():
    """Users call nothing in engine/: every module there starts with ``_``."""
    modules = [p.name for p in (PACKAGE / "engine").glob("*.py") if p.name != "__init__.py"]
    assert modules, "engine/ has no modules"
    assert [m for m in modules if not m.startswith("_")] == []


def test_public_kernel_modules_hold_only_documented_names():
    """Every name defined in a public module of kernels/ is in ``kernels.__all__`` or starts with ``_``, and
    ``kernels.__all__`` names only what those modules define."""
    import fastbp.kernels as kernels

    defined = set()
    for path in sorted((PACKAGE / "kernels").glob("[!_]*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                defined.add((node.name, path.name))
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    for name in ast.walk(target):
                        if isinstance(name, ast.Name):
                            defined.add((name.id, path.name))
    undocumented = sorted(f"{file}: {name}" for name, file in defined if not name.startswith("_"))
    undocumented = [entry for entry in undocumented if entry.split(": ")[1] not in kernels.__all__]
    assert undocumented == [], "public names missing from kernels.__all__ (add them or prefix _)"
    assert sorted(set(kernels.__all__) - {name for name, _ in defined}) == []
    assert all(hasattr(kernels, name) for name in kernels.__all__)
