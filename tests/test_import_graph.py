"""The package's import graph, read from the source: no circles, and a torch-free runtime.

Every `import` and `from ... import` counts, also those inside functions: a lazy import still ties two
modules together, and a circle through one is a circle a reader must follow.
"""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

import pytest

import embedrt

PACKAGE = Path(embedrt.__file__).parent
# The exporters' torch-free modules: `embedrt triton build` writes export dirs with staging on the runtime alone.
TORCH_FREE_EXPORT = ("embedrt.export", "embedrt.export.staging")
# What the runtime never imports, not even inside a function: the exporters and the front doors above it.
ABOVE_RUNTIME = ("embedrt.export", "embedrt.default_model", "embedrt.loader", "embedrt.commands", "embedrt.serve", "embedrt.cli", "embedrt.bulk")
HEAVY = ("torch", "transformers", "onnx", "onnxruntime.transformers", "sentence_transformers", "torchvision")


REGISTERED = re.compile(r"^embedrt(\.\w+)+(:\w+)?$")  # "embedrt.runtime.text.embedder:TextEmbedder" in a registry


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def imports_of(name: str) -> list[tuple[str, bool]]:
    """(imported module, at top level) for each import in module `name`; a `from X import y` names X.y when that is a module."""
    tree = ast.parse(MODULES[name].read_text(), filename=str(MODULES[name]))
    top_level = {id(node) for node in tree.body}
    for node in tree.body:  # `if TYPE_CHECKING:` blocks never run; `try:` at top level does
        if isinstance(node, ast.Try):
            top_level.update(id(child) for child in ast.walk(node) if isinstance(child, (ast.Import, ast.ImportFrom)))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name, id(node) in top_level) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package(name) else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                found.append((submodule if submodule in MODULES else target, id(node) in top_level))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and REGISTERED.match(node.value):
            found.append((node.value.partition(":")[0], False))  # a registry entry, imported on use by importlib
    return found


def internal(target: str) -> str | None:
    """The embedrt module an import lands in (a name inside a module counts as its module)."""
    while target and target not in MODULES:
        target = target.rpartition(".")[0]
    return target or None


@functools.cache
def graph() -> dict[str, set[str]]:
    edges = {}
    for name in MODULES:
        targets = {internal(t) for t, _ in imports_of(name) if t.startswith("embedrt")}
        edges[name] = {t for t in targets if t and t != name and not (is_package(t) and name.startswith(t + "."))}
    return edges


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each as a sorted list."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
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

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def one_cycle(component: list[str], edges: dict[str, set[str]]) -> list[str]:
    """A path a -> ... -> a inside the component, for the failure message."""
    members = set(component)
    start = component[0]
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(edges[node] & members):
            if nxt == start:
                return paths[node] + [start]
            if nxt not in paths:
                paths[nxt] = paths[node] + [nxt]
                queue.append(nxt)
    return component


def test_the_walk_sees_the_package():
    edges = graph()
    assert len(MODULES) > 100
    assert edges["embedrt.cli"] >= {"embedrt.errors", "embedrt.extras"}
    lazy_openvino = [m for m in MODULES if ("openvino", False) in imports_of(m)]
    assert lazy_openvino, "the OpenVINO backend imports openvino inside a function: the walk must see it, not as top level"


def test_the_walk_finds_a_planted_circle():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    (component,) = circles(edges)
    assert component == ["a", "b", "c"]
    assert one_cycle(component, edges) == ["a", "b", "c", "a"]


def test_no_import_circles():
    edges = graph()
    found = [" -> ".join(one_cycle(component, edges)) for component in circles(edges)]
    assert not found, "import circles:\n" + "\n".join(found)


def heavy_at_top_level(name: str) -> list[str]:
    """What module `name` imports at import time that needs the export extra: torch & co, or an exporter module."""
    found = set()
    for target, top in imports_of(name):
        landed = internal(target) if target.startswith("embedrt") else None
        if top and (target in HEAVY or target.startswith(tuple(h + "." for h in HEAVY))):
            found.add(target)
        elif top and landed and landed.startswith("embedrt.export") and landed not in TORCH_FREE_EXPORT:
            found.add(landed)
    return sorted(found)


def test_the_heavy_check_sees_torch():
    assert "torch" in heavy_at_top_level("embedrt.export.graph_pooling")
    assert "embedrt.export.text.source" in heavy_at_top_level("embedrt.export.image.source")


@pytest.mark.parametrize("name", [m for m in MODULES if not m.startswith("embedrt.export") or m in TORCH_FREE_EXPORT])
def test_modules_outside_the_exporters_import_no_torch_at_top_level(name):
    heavy = heavy_at_top_level(name)
    assert not heavy, f"{name} imports {heavy} at import time; import it inside the function that needs it"


@pytest.mark.parametrize("name", [m for m in MODULES if m.startswith("embedrt.runtime")])
def test_the_runtime_never_reaches_up(name):
    above = sorted({t for t in graph()[name] if t.startswith(ABOVE_RUNTIME)})
    assert not above, f"{name} imports {above}: the runtime sits below the exporters and the front doors"


def test_registry_entries_count_as_imports():
    assert "embedrt.runtime.text.embedder" in graph()["embedrt.loader"]
    assert "embedrt.runtime.queue.features" in graph()["embedrt.runtime.queue"]


def test_each_modality_has_an_embedder_and_a_queue():
    from embedrt.loader import EMBEDDERS
    from embedrt.manifest import MODALITIES
    from embedrt.runtime.queue import QUEUES

    assert sorted(EMBEDDERS) == sorted(QUEUES) == sorted(MODALITIES)
