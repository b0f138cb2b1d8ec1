"""The package's shape: layers import only downwards, no import cycles, imports inside functions only for
optional (or heavy) dependencies, and every module imports in a fresh interpreter."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import ecpe

SRC = Path(ecpe.__file__).resolve().parent

# data <- modules <- models <- inference <- training <- experiments / serve / stats <- cli
LAYERS = {
    "ecpe.version": 0, "ecpe.errors": 0, "ecpe.cluster": 0, "ecpe.workers": 0, "ecpe.config": 0, "ecpe.devices": 0, "ecpe.cache": 0, "ecpe.significance": 0,
    "ecpe.data": 1, "ecpe.metrics": 1, "ecpe.embeddings": 1, "ecpe.resources": 1, "ecpe.lexicon": 1,
    "ecpe.modules": 2,
    "ecpe.models": 3,
    "ecpe.inference": 4, "ecpe": 4,  # ecpe/__init__: Extractor
    "ecpe.training": 5,
    "ecpe.options": 6, "ecpe.stats": 6, "ecpe.experiments": 6, "ecpe.serve": 6, "ecpe.vectors": 6, "ecpe.transfer": 6,
    "ecpe.compare": 6, "ecpe.batch": 6, "ecpe.sweep": 6,
    "ecpe.cli": 7,
}
# imports allowed inside functions: optional dependencies, and required ones that are slow to import
LOCAL_IMPORTS = {"fastapi", "uvicorn", "matplotlib", "scipy", "gensim", "jieba", "rjieba", "ray", "selenium", "yaml",
                 "ecpe.serve.app"}  # needs fastapi: imported by `ecpe serve` only


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def is_module(name: str) -> bool:
    rel = Path(*name.split("."))
    return (SRC.parent / rel).with_suffix(".py").exists() or (SRC.parent / rel / "__init__.py").exists()


def imports(path: Path) -> list[tuple[str, bool]]:
    """(imported module, inside a function) for every import statement of a file, relative ones resolved."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    local = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            local |= {id(n) for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom))}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, id(node) in local) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("ecpe"):  # `from . import x`: x may be a submodule
                subs = [f"{target}.{a.name}" for a in node.names if is_module(f"{target}.{a.name}")]
                if subs:
                    out += [(s, id(node) in local) for s in subs]
                    continue
            out.append((target, id(node) in local))
    return out


def layer(name: str) -> int:
    parts = name.split(".")
    for k in range(len(parts), 0, -1):
        if ".".join(parts[:k]) in LAYERS:
            return LAYERS[".".join(parts[:k])]
    raise AssertionError(f"{name}: no layer assigned in tests/test_architecture.py LAYERS")


def graph() -> dict[str, list[tuple[str, bool]]]:
    return {module_name(p): imports(p) for p in sorted(SRC.rglob("*.py"))}


def test_every_module_has_a_layer():
    for name in graph():
        layer(name)


def test_no_upward_imports():
    bad = [f"{src} (layer {layer(src)}) imports {dst} (layer {layer(dst)})"
           for src, deps in graph().items() for dst, _ in deps if dst.startswith("ecpe") and layer(dst) > layer(src)]
    assert not bad, "\n".join(bad)


def test_no_import_cycles():
    g = {src: sorted({d for d, _ in deps if d.startswith("ecpe") and d != src}) for src, deps in graph().items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> None:
        state[n] = 1
        stack.append(n)
        for d in g.get(n, []):
            if state.get(d) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(d):] + [d]))
            if d not in state:
                visit(d)
        stack.pop()
        state[n] = 2

    for n in g:
        if n not in state:
            visit(n)


def test_imports_inside_functions_only_for_optional_dependencies():
    bad = [f"{src}: {dst}" for src, deps in graph().items() for dst, local in deps
           if local and dst not in LOCAL_IMPORTS and dst.split(".")[0] not in LOCAL_IMPORTS]
    assert not bad, "imports inside functions (move them to the top of the module):\n" + "\n".join(bad)


def test_models_never_import_training_or_inference():
    for src, deps in graph().items():
        if src.startswith(("ecpe.models", "ecpe.modules", "ecpe.data")):
            assert not [d for d, _ in deps if d.startswith(("ecpe.training", "ecpe.inference", "ecpe.cli"))], src


def test_every_module_imports_in_a_fresh_interpreter():
    import importlib.util

    serve_extra = importlib.util.find_spec("fastapi") is not None
    names = sorted(n for n in graph() if n != "ecpe.serve.app" or serve_extra)
    for order in (names, names[::-1]):  # whatever is imported first, nothing depends on import order
        code = "import importlib\nfor n in %r:\n    importlib.import_module(n)\n" % order
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr[-2000:]
