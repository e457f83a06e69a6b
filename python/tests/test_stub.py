"""The .pyi stubs (what editors complete from) name every public function and method with the
same parameters as the code."""

import ast
import inspect
from pathlib import Path

import kvtier
import kvtier.trace

PKG = Path(kvtier.__file__).parent


def stub_defs(name):
    tree = ast.parse((PKG / name).read_text())
    out = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            out[node.name] = [a.arg for a in node.args.args + node.args.kwonlyargs]
        elif isinstance(node, ast.ClassDef):
            out[node.name] = {
                f.name: [a.arg for a in f.args.args + f.args.kwonlyargs]
                for f in node.body
                if isinstance(f, ast.FunctionDef)
            }
        elif isinstance(node, ast.ImportFrom):
            out.update({a.asname or a.name: None for a in node.names})
        elif isinstance(node, (ast.AnnAssign, ast.Assign)):
            target = node.target if isinstance(node, ast.AnnAssign) else node.targets[0]
            out[target.id] = None
    return out


def params(f):
    return [p.name for p in inspect.signature(f).parameters.values() if p.kind != p.VAR_KEYWORD]


def test_package_stub_matches():
    stub = stub_defs("__init__.pyi")
    for name in kvtier.__all__:
        assert name in stub, f"{name} missing from __init__.pyi"
        obj = getattr(kvtier, name)
        if inspect.isfunction(obj):
            assert stub[name] == params(obj), name
    for method in ("load", "from_dict", "with_", "show", "to_toml"):
        code = params(getattr(kvtier.Scenario, method))
        stubbed = [a for a in stub["Scenario"][method] if a not in ("self", "cls")]
        assert stubbed == [a for a in code if a not in ("self", "cls")], method


def test_trace_stub_matches():
    stub = stub_defs("trace.pyi")
    assert stub["stats"] == params(kvtier.trace.stats)
