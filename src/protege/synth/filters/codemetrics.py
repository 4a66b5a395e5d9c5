"""Static measures of a Python solution: size, cyclomatic complexity, pyflakes-like lint, unused and needless code.

    m = measure("import os\ndef add(a, b):\n    return a + b\n", entry_point="add", tests="assert add(1, 2) == 3")
    m.lines, m.ast_nodes, m.cyclomatic     # 2, 15, 1
    m.unused                               # ['unused import os']

Cyclomatic complexity is 1 + the decision points of the whole program (if, loops, except handlers, conditional
expressions, each extra operand of and/or, each comprehension loop and filter, match cases), so a solution
split into helpers scores the same as one function. Lint covers what pyflakes reports as errors: undefined
names, star imports, redefined functions, `is` against a literal, f-strings without placeholders. Unused:
imports, functions and classes nobody references (the tests count as references, since MBPP tests may use
the solution's `import math`), and local variables assigned and never read. Needless: a helper function whose
body is one `return`, or a class, referenced once, and a helper whose only caller just returns its result.
"""
from __future__ import annotations

import ast
import builtins
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Optional

BUILTINS = set(dir(builtins)) | {"__name__", "__file__", "__doc__", "__builtins__", "__spec__"}
_DECISIONS = (ast.If, ast.IfExp, ast.For, ast.AsyncFor, ast.While, ast.ExceptHandler, ast.match_case)
_FUNCS = (ast.FunctionDef, ast.AsyncFunctionDef)


@dataclass
class CodeMetrics:
    lines: int
    ast_nodes: int
    cyclomatic: int
    lint: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    needless: list[str] = field(default_factory=list)

    def size(self) -> dict:
        return {"lines": self.lines, "ast_nodes": self.ast_nodes, "cyclomatic": self.cyclomatic}


def measure(source: str, entry_point: Optional[str] = None, tests: str = "") -> CodeMetrics:
    """Raises SyntaxError when `source` does not parse (the schema filter drops those first)."""
    tree = ast.parse(source)
    lines = sum(1 for line in source.splitlines() if line.strip() and not line.strip().startswith("#"))
    nodes = sum(1 for n in ast.walk(tree) if not isinstance(n, (ast.expr_context, ast.boolop, ast.operator,
                                                                   ast.unaryop, ast.cmpop)))
    metrics = CodeMetrics(lines=lines, ast_nodes=nodes, cyclomatic=cyclomatic(tree))
    metrics.lint = lint(tree)
    refs = _references(tree, tests)
    metrics.unused = unused(tree, refs, entry_point)
    metrics.needless = needless(tree, refs, entry_point)
    return metrics


def cyclomatic(tree: ast.AST) -> int:
    points = 0
    for node in ast.walk(tree):
        if isinstance(node, _DECISIONS):
            points += 1
        elif isinstance(node, ast.BoolOp):
            points += len(node.values) - 1
        elif isinstance(node, ast.comprehension):
            points += 1 + len(node.ifs)
    return 1 + points


def bound_names(tree: ast.AST) -> set[str]:
    """Every name the program binds anywhere: assignments, arguments, imports, defs, handlers, patterns."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, (*_FUNCS, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update(_import_names(node))
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            names.update(node.names)
        elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
            names.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            names.add(node.rest)
    return names


def lint(tree: ast.Module) -> list[str]:
    problems = []
    bound = bound_names(tree)
    star = False
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
            star = True
            problems.append(f"line {node.lineno}: star import from {node.module}")
        elif isinstance(node, ast.Compare):
            for op, right in zip(node.ops, node.comparators):
                if isinstance(op, (ast.Is, ast.IsNot)) and isinstance(right, ast.Constant) \
                        and isinstance(right.value, (str, bytes, int, float)) and not isinstance(right.value, bool):
                    problems.append(f"line {node.lineno}: `is` comparison with a literal")
        elif isinstance(node, ast.JoinedStr) and not any(isinstance(v, ast.FormattedValue) for v in node.values):
            problems.append(f"line {node.lineno}: f-string without placeholders")
    if not star:  # a star import may bind anything
        undefined = sorted({n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
                            and n.id not in bound and n.id not in BUILTINS})
        problems += [f"undefined name {name}" for name in undefined]
    for scope in [tree] + [n for n in ast.walk(tree) if isinstance(n, (*_FUNCS, ast.ClassDef))]:
        defs = Counter(n.name for n in scope.body if isinstance(n, _FUNCS))
        problems += [f"function {name} defined {count} times" for name, count in defs.items() if count > 1]
    return problems


def unused(tree: ast.Module, refs: Counter, entry_point: Optional[str]) -> list[str]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)) and getattr(node, "module", None) != "__future__":
            out += [f"unused import {name}" for name in _import_names(node) if name != "*" and not refs[name]]
    for node in tree.body:
        if isinstance(node, (*_FUNCS, ast.ClassDef)) and node.name != entry_point and not refs[node.name]:
            kind = "class" if isinstance(node, ast.ClassDef) else "function"
            out.append(f"unused {kind} {node.name}")
    for func in (n for n in ast.walk(tree) if isinstance(n, _FUNCS)):
        out += [f"unused variable {name} in {func.name}" for name in _unused_locals(func)]
    return out


def needless(tree: ast.Module, refs: Counter, entry_point: Optional[str]) -> list[str]:
    out = []
    top = {n.name: n for n in tree.body if isinstance(n, (*_FUNCS, ast.ClassDef))}
    for name, node in top.items():
        if name == entry_point or refs[name] != 1:
            continue  # unused ones are reported as unused; shared ones earn their keep
        if isinstance(node, ast.ClassDef):
            out.append(f"class {name} used once")
        elif _single_return(node) is not None:
            out.append(f"helper {name} wraps one expression and is used once")
    for name, node in top.items():
        result = _single_return(node) if isinstance(node, _FUNCS) else None
        if isinstance(result, ast.Call) and isinstance(result.func, ast.Name):
            callee = result.func.id
            if callee in top and callee != name and callee != entry_point and refs[callee] == 1 \
                    and isinstance(top[callee], _FUNCS) and _single_return(top[callee]) is None:
                out.append(f"{name} only returns {callee}(...), its single use")
    return out


def _import_names(node: ast.Import | ast.ImportFrom) -> list[str]:
    return [a.asname or a.name.split(".")[0] for a in node.names]


def _references(tree: ast.Module, tests: str) -> Counter:
    """How often each name is read, in the solution and in its tests."""
    refs = Counter(n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load))
    try:
        refs.update(n.id for n in ast.walk(ast.parse(tests or "")) if isinstance(n, ast.Name))
    except (SyntaxError, ValueError):
        refs.update(re.findall(r"[A-Za-z_]\w*", tests or ""))
    return refs


def _own_nodes(func: ast.AST):
    """Nodes of a function's body, not descending into nested functions, classes or lambdas."""
    stack = list(func.body)
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, (*_FUNCS, ast.ClassDef, ast.Lambda)):
            stack.extend(ast.iter_child_nodes(node))


def _unused_locals(func) -> list[str]:
    # As pyflakes: only plain `name = ...` assignments; tuple unpacking and loop targets are idiomatic.
    declared = {n for node in _own_nodes(func) if isinstance(node, (ast.Global, ast.Nonlocal)) for n in node.names}
    assigned = []
    for node in _own_nodes(func):
        if isinstance(node, ast.Assign):
            assigned += [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and node.value is not None and isinstance(node.target, ast.Name):
            assigned.append(node.target.id)
    loaded = {n.id for n in ast.walk(func) if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Load, ast.Del))}
    if "locals" in loaded or "vars" in loaded:
        return []
    return sorted({name for name in assigned if name not in loaded and name not in declared
                   and not name.startswith("_")})


def _single_return(func) -> Optional[ast.expr]:
    """The expression of a function whose body (after any docstring) is a single `return <expr>`."""
    body = func.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]
    if len(body) == 1 and isinstance(body[0], ast.Return) and body[0].value is not None:
        return body[0].value
    return None
