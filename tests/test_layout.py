"""The package is layered: no module imports, even lazily or for type hints, one that imports it back."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "optimum_bengali"


def _modules():
    mods = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        mods[name] = path
    return mods


def _imports(name, path, mods):
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else [])) if node.level else node.module
            for alias in node.names:
                yield f"{target}.{alias.name}" if f"{target}.{alias.name}" in mods else target
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


def import_graph():
    mods = _modules()
    graph = {m: set() for m in mods}
    for name, path in mods.items():
        for target in _imports(name, path, mods):
            while target and target not in mods and "." in target:
                target = target.rsplit(".", 1)[0]
            if target in mods and target != name:
                graph[name].add(target)
    return graph


def circles(graph):
    """Strongly connected groups of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_the_finder_sees_a_circle():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circles():
    graph = import_graph()
    assert "optimum_bengali.formats" in graph["optimum_bengali.pipeline"]  # the graph is really read
    assert circles(graph) == []


def test_low_modules_do_not_import_techniques_or_formats():
    graph = import_graph()
    high = ("optimum_bengali.pipeline", "optimum_bengali.formats", "optimum_bengali.quantization",
            "optimum_bengali.pruning", "optimum_bengali.distillation", "optimum_bengali.training",
            "optimum_bengali.steps_index")
    for low in ("optimum_bengali.modeling", "optimum_bengali.data", "optimum_bengali.registry",
                "optimum_bengali.steps", "optimum_bengali.state", "optimum_bengali.runtime"):
        assert not [t for t in graph[low] if t.startswith(high)], low


def test_steps_methods_and_backends_share_one_registry_style():
    """Every ``method:``/``backend:`` a recipe may name is registered by its module, and nothing dispatches on
    module-path strings (only the package root imports names lazily)."""
    import typing

    from optimum_bengali.pruning.methods import PRUNING_METHODS
    from optimum_bengali.quantization.backends import QUANTIZATION_BACKENDS
    from optimum_bengali.recipe import available_steps
    from optimum_bengali.registry import STEPS

    steps = available_steps()
    assert sorted(steps) == STEPS.names()
    method = typing.get_type_hints(steps["prune"])["method"]
    backend = typing.get_type_hints(steps["quantize"])["backend"]
    assert sorted(typing.get_args(method)) == PRUNING_METHODS.names() == ["magnitude", "structured"]
    assert sorted(typing.get_args(backend)) == QUANTIZATION_BACKENDS.names() == ["inc", "openvino", "torch", "torchao"]
    users = [p.name for p in PACKAGE.rglob("*.py") if "import_module(" in p.read_text(encoding="utf-8")]
    assert users == ["__init__.py"], users
