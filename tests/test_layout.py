"""The package's structure, read from its imports (ast): layers point down, no cycles, and the
reference path reads on its own (see README, "Reading order")."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("tinygrad_cv", "models")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}


def imports_of(name: str) -> set:
    """The project modules a module imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(MODULES[name].read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{name}: relative import (the project uses absolute imports)"
            base = node.module
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        else:
            continue
        found |= {t for t in targets if t in MODULES and t != name}
    return found


GRAPH = {name: imports_of(name) for name in MODULES}


def cycles() -> list:
    """Strongly connected components with more than one module (Tarjan's algorithm, iterative)."""
    index, low, on_stack, stack, components, counter = {}, {}, set(), [], [], [0]
    for start in GRAPH:
        if start in index:
            continue
        work = [(start, iter(sorted(GRAPH[start])))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(GRAPH[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(component)
    return components


def test_the_only_import_cycle_is_tensor_and_functional():
    components = cycles()
    assert any("tinygrad_cv.tensor" in c for c in components)  # the one allowed cycle is found
    for component in components:
        allowed = all(m == "tinygrad_cv.tensor" or m.startswith("tinygrad_cv.functional") for m in component)
        assert allowed, f"import cycle: {sorted(component)}"


def test_reference_kernels_never_import_the_fast_paths():
    for name, imported in GRAPH.items():
        if name.startswith("tinygrad_cv.kernels") and not name.startswith("tinygrad_cv.kernels.fast"):
            fast = sorted(m for m in imported if m.startswith("tinygrad_cv.kernels.fast"))
            assert not fast, f"{name} (a reference kernel) imports {fast}"


def test_kernels_know_nothing_of_tensors():
    for name, imported in GRAPH.items():
        if name.startswith("tinygrad_cv.kernels"):
            upward = sorted(m for m in imported if not m.startswith("tinygrad_cv.kernels") and m != "tinygrad_cv.backend")
            assert not upward, f"{name} imports {upward}"


def test_geometry_imports_only_numpy():
    tree = ast.parse(MODULES["tinygrad_cv.kernels.geometry"].read_text())
    roots = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    roots |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level == 0}
    assert roots <= {"numpy", "functools", "dataclasses", "typing", "__future__"}, roots


def test_vision_and_models_never_import_kernels():
    for name, imported in GRAPH.items():
        if name.startswith(("tinygrad_cv.vision", "models")):
            kernels = sorted(m for m in imported if m.startswith("tinygrad_cv.kernels"))
            assert not kernels, f"{name} imports {kernels}: use the ops in tinygrad_cv.functional"


def test_the_graph_sees_the_known_imports():
    """Guards the test itself: the reader resolves both import forms."""
    assert "tinygrad_cv.kernels.im2col" in GRAPH["tinygrad_cv.kernels.conv"]
    assert "tinygrad_cv.functional" in GRAPH["tinygrad_cv.tensor"]
    assert "tinygrad_cv.tensor" in GRAPH["tinygrad_cv.functional.conv"]
    assert "tinygrad_cv.kernels.cuda" in GRAPH["tinygrad_cv.kernels.dispatch"]
