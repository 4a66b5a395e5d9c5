"""Import structure: no import loop between packages, and each layer imports only the layers below it.

Every `import`/`from ... import` of protege in src/protege is read with `ast`, including those inside functions
(a lazy import is still a dependency); only `if TYPE_CHECKING:` blocks are left out. Loops inside one package
(a module and its helper) are allowed; a loop that crosses packages is not.
"""
import ast
from collections import defaultdict
from pathlib import Path

import protege

SRC = Path(protege.__file__).parent
# package -> packages it must never import (stages never reach up to the pipeline, the CLI or research code)
FORBIDDEN = {
    "scoring": {"tasks", "models", "synth", "train", "evaluate", "pipeline", "cli", "benchmark", "lab", "report",
                "config", "cooperative"},
    "tasks": {"models", "synth", "train", "evaluate", "pipeline", "cli", "benchmark", "lab", "report", "config",
              "cooperative"},
    "models": {"tasks", "synth", "train", "evaluate", "pipeline", "cli", "benchmark", "lab", "report", "config"},
    "evaluate": {"synth", "train", "pipeline", "cli", "benchmark", "lab", "report"},
    "synth": {"train", "pipeline", "cli", "benchmark", "lab", "report"},
    "train": {"pipeline", "cli", "benchmark", "lab", "report"},
    "report": {"pipeline", "cli", "benchmark", "lab"},
    "pipeline": {"cli", "benchmark", "lab"},
    "benchmark": {"cli", "lab"},
}


def module_name(path: Path) -> str:
    parts = ("protege",) + path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package(module: str) -> str:
    return module.split(".")[1] if "." in module else module


def imports_of(tree: ast.AST):
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("protege"):
            yield from (f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name.startswith("protege"))


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in SRC.rglob("*.py")}

    def resolve(name: str) -> str:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name

    graph = defaultdict(set)
    for name, path in modules.items():
        for target in map(resolve, imports_of(ast.parse(path.read_text()))):
            if target and target != name and target != "protege":
                graph[name].add(target)
    return {name: graph[name] for name in modules}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, found, counter = {}, {}, set(), [], [], 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
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
    return found


def test_no_import_loop_crosses_a_package():
    crossing = [c for c in cycles(import_graph()) if len({package(m) for m in c}) > 1]
    assert crossing == []


def test_cycle_finder_finds_a_loop():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_each_layer_imports_only_layers_below_it():
    wrong = sorted(f"{module} imports {target}" for module, targets in import_graph().items() for target in targets
                   if package(target) in FORBIDDEN.get(package(module), set()))
    assert wrong == []


def test_nothing_in_the_product_imports_the_lab():
    wrong = sorted(f"{module} imports {target}" for module, targets in import_graph().items() for target in targets
                   if package(target) == "lab" and package(module) != "lab")
    assert wrong == []


def test_no_module_is_over_500_lines():
    long = {module_name(p): n for p in SRC.rglob("*.py") if (n := len(p.read_text().splitlines())) > 500}
    assert long == {}
