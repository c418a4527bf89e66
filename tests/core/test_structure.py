"""The package's shape, checked by reading the code with ``ast`` (nothing here is hard-coded).

Layers (a module may import its own layer or lower ones, never a higher one):

* 0 - errors, stats, kernels, settings, preprocess, logs, _version, synthetic, metrics,
  diagnostics: pure values, numpy maths and process facts (diagnostics reads the process's own
  resource usage), no I/O, no Dask graph.
* 1 - io, models: reading and writing files and stores, and the networks with their weights.
* 2 - tiling, engine: windows, seams and blending; running a network on a device.
* 3 - pipeline, video, train (and graph, cluster while they move into pipeline/): the Dask
  graphs and their computing.
* 4 - api, bench, and the package root (``urst_dask``, a facade re-exporting the api):
  what a Python user calls.
* 5 - cli, __main__: the command line.

``urst_dask/testing/`` (test helpers) is not part of the layering, nor is the root's lazy
``__getattr__`` (it resolves names on use, after everything is imported).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import urst_dask

PACKAGE = Path(urst_dask.__file__).parent
ROOT = "urst_dask"
LAYERS = {
    **dict.fromkeys(("errors", "stats", "kernels", "settings", "preprocess", "logs", "_version", "synthetic",
                     "metrics", "diagnostics"), 0),
    **dict.fromkeys(("io", "models"), 1),
    **dict.fromkeys(("tiling", "engine"), 2),
    **dict.fromkeys(("pipeline", "video", "train", "graph", "cluster"), 3),
    **dict.fromkeys(("api", "bench", ""), 4),
    **dict.fromkeys(("cli", "__main__"), 5),
}
EXCLUDED = ("testing",)  # top-level parts of urst_dask/ outside the structure rules
COMPUTE_ALLOWED = ("pipeline", "testing")
MAX_LINES = 400
MAX_PARAMS = 8


@dataclass(frozen=True)
class Module:
    name: str  # dotted, e.g. "urst_dask.io.writers"
    path: Path
    is_package: bool
    tree: ast.Module

    @property
    def part(self) -> str:
        """The top-level part under urst_dask ("io", "api", "" for the root)."""
        return self.name.split(".")[1] if "." in self.name else ""

    @property
    def rel(self) -> str:
        return str(self.path.relative_to(PACKAGE.parent))


def _modules() -> dict[str, Module]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        name = ".".join(parts)
        out[name] = Module(name, path, is_package, ast.parse(path.read_text(encoding="utf-8"), str(path)))
    return out


MODULES = _modules()


def _in(module: Module, parts: tuple[str, ...]) -> bool:
    return module.part in parts


def _walk_skipping(node: ast.AST, skip_root_getattr: bool):
    """``ast.walk`` that does not enter the root's lazy ``__getattr__``."""
    stack = [node]
    while stack:
        n = stack.pop()
        if skip_root_getattr and isinstance(n, ast.FunctionDef) and n.name == "__getattr__":
            continue
        yield n
        stack.extend(ast.iter_child_nodes(n))


def _known(name: str) -> str | None:
    """The longest known module that ``name`` (dotted) is or lies in."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _type_checking_only(tree: ast.Module) -> set[int]:
    """ids of import nodes under ``if TYPE_CHECKING:`` (not imported at run time)."""
    out: set[int] = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test):
            out.update(id(m) for stmt in n.body for m in ast.walk(stmt))
    return out


def imports(module: Module, runtime_only: bool = False) -> list[tuple[str, int]]:
    """(imported urst_dask module, line) for every import in ``module``, module-level and
    inside functions, relative imports resolved; ``from X import name`` is ``X.name`` when
    that is a module, else ``X``."""
    package = module.name if module.is_package else module.name.rpartition(".")[0]
    skip = _type_checking_only(module.tree) if runtime_only else set()
    found = []
    for n in _walk_skipping(module.tree, module.name == ROOT):
        if id(n) in skip:
            continue
        if isinstance(n, ast.Import):
            targets = [a.name for a in n.names]
        elif isinstance(n, ast.ImportFrom):
            if n.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (n.level - 1)]
                base = ".".join(base_parts + ([n.module] if n.module else []))
            else:
                base = n.module or ""
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in n.names]
        else:
            continue
        for target in targets:
            if target == ROOT or target.startswith(ROOT + "."):
                known = _known(target)
                if known is not None and known != module.name:
                    found.append((known, n.lineno))
    return found


def _layer(name: str) -> int:
    part = name.split(".")[1] if "." in name else ""
    assert part in LAYERS, f"{name}: no layer for {part!r}; add it to LAYERS with its reason"
    return LAYERS[part]


def _checked() -> list[Module]:
    return [m for m in MODULES.values() if not _in(m, EXCLUDED)]


def test_every_part_of_the_package_has_a_layer():
    missing = sorted({m.part for m in _checked()} - set(LAYERS))
    assert not missing, f"parts of urst_dask/ with no layer: {missing}"


def test_lower_layers_never_import_higher_ones():
    offenders = []
    for m in _checked():
        a = _layer(m.name)
        for target, line in imports(m):
            if target.split(".")[1:2] and target.split(".")[1] in EXCLUDED:
                offenders.append(f"{m.name} -> {target} (imports test helpers) [{m.rel}:{line}]")
                continue
            b = _layer(target)
            if b > a:
                offenders.append(f"{m.name} -> {target} (layer {a} -> layer {b}) [{m.rel}:{line}]")
    assert not offenders, "imports from a higher layer:\n" + "\n".join(sorted(set(offenders)))


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), iteratively."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
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
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return out


def test_the_module_import_graph_has_no_cycles():
    """Run-time imports (``if TYPE_CHECKING:`` ones left out), module-level and in functions."""
    graph: dict[str, set[str]] = defaultdict(set)
    for m in _checked():
        graph[m.name].update(t for t, _ in imports(m, runtime_only=True) if t.split(".")[1:2] != ["testing"])
    cycles = _cycles(dict(graph))
    shown = []
    for c in cycles:
        edges = [f"{a} -> {b}" for a in c for b in sorted(graph[a]) if b in c]
        shown.append(f"{len(c)} modules: " + ", ".join(edges))
    assert not cycles, "import cycles:\n" + "\n".join(shown)


def _called(call: ast.Call) -> str | None:
    """What a call does, if it computes or persists a Dask collection or talks to a cluster."""
    f = call.func
    if isinstance(f, ast.Attribute):
        owner = ast.unparse(f.value)
        if f.attr in ("compute", "persist"):
            return f"{owner}.{f.attr}("
        if f.attr == "store" and owner in ("da", "dask.array"):
            return f"{owner}.store("
        if f.attr in ("submit", "gather", "map", "compute", "scatter") and "client" in owner.lower():
            return f"{owner}.{f.attr}("
    return None


def test_dask_computes_only_in_the_pipeline():
    offenders = []
    for m in _checked():
        if _in(m, COMPUTE_ALLOWED):
            continue
        for n in ast.walk(m.tree):
            what = None
            if isinstance(n, ast.Call):
                what = _called(n)
            elif isinstance(n, ast.Import):
                what = next((f"import {a.name}" for a in n.names if a.name.split(".")[0] == "distributed"
                             or a.name.startswith("dask.distributed")), None)
            elif isinstance(n, ast.ImportFrom) and not n.level and n.module:
                if n.module.split(".")[0] == "distributed" or n.module.startswith("dask.distributed"):
                    what = f"from {n.module} import ..."
                elif n.module in ("dask", "dask.array") and any(a.name in ("compute", "persist", "store")
                                                                for a in n.names):
                    what = f"from {n.module} import " + ", ".join(a.name for a in n.names)
            if what:
                offenders.append(f"{m.rel}:{n.lineno}: {what}")
    assert not offenders, "Dask computing outside urst_dask/pipeline/:\n" + "\n".join(offenders)


# rule 7: I/O lives in urst_dask/io/. Storage and image libraries are imported there only
# (bench also builds its inputs with PIL); the compute parts touch no file at all.
IO_LIBRARIES = ("zarr", "tifffile", "fsspec", "s3fs", "av", "PIL")
IO_ALLOWED = ("io", "testing")
PIL_ALSO = ("bench",)
COMPUTE_PARTS = ("kernels", "stats", "preprocess", "metrics", "models", "engine", "tiling")
FILE_CALLS = ("open", "read_bytes", "write_bytes", "read_text", "write_text", "mkdir", "unlink", "rmtree", "touch",
              "rename", "mkdtemp", "save_model", "torch.save", "torch.load", "os.replace", "os.remove", "np.save",
              "np.load", "json.dump")


def _library_imports(tree: ast.AST) -> list[tuple[str, int]]:
    found = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Import):
            found += [(a.name.split(".")[0], n.lineno) for a in n.names]
        elif isinstance(n, ast.ImportFrom) and not n.level and n.module:
            found.append((n.module.split(".")[0], n.lineno))
    return found


def _file_calls(tree: ast.AST) -> list[tuple[str, int]]:
    found = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Call):
            full = ast.unparse(n.func)
            name = n.func.attr if isinstance(n.func, ast.Attribute) else full
            if full in FILE_CALLS or name in FILE_CALLS:
                found.append((full, n.lineno))
    return found


def test_storage_libraries_are_imported_in_io_only():
    offenders = [f"{m.rel}:{line}: import {lib}" for m in _checked() if not _in(m, IO_ALLOWED)
                 for lib, line in _library_imports(m.tree)
                 if lib in IO_LIBRARIES and not (lib == "PIL" and _in(m, PIL_ALSO))]
    assert not offenders, "storage/image libraries outside urst_dask/io/:\n" + "\n".join(offenders)


def test_compute_code_touches_no_file():
    offenders = [f"{m.rel}:{line}: {call}(" for m in _checked() if _in(m, COMPUTE_PARTS)
                 for call, line in _file_calls(m.tree)]
    assert not offenders, "file I/O in compute code (move it to urst_dask/io/):\n" + "\n".join(offenders)


def test_no_module_is_over_400_lines():
    offenders = []
    for m in MODULES.values():
        n = len(m.path.read_text(encoding="utf-8").splitlines())
        if n > MAX_LINES:
            offenders.append(f"{m.rel}: {n} lines")
    assert not offenders, f"modules over {MAX_LINES} lines:\n" + "\n".join(sorted(offenders))


def _public_functions(tree: ast.Module):
    """(qualified name, node) of module-level functions and methods of module-level classes."""
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node.name, node, False
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    yield f"{node.name}.{item.name}", item, True


def parameter_count(fn: ast.FunctionDef | ast.AsyncFunctionDef, method: bool) -> int:
    """Positional and keyword-only parameters, without self/cls (``*args``/``**kwargs`` not counted)."""
    args = fn.args
    positional = args.posonlyargs + args.args
    static = any(ast.unparse(d) == "staticmethod" for d in fn.decorator_list)
    if method and not static and positional and positional[0].arg in ("self", "cls"):
        positional = positional[1:]
    return len(positional) + len(args.kwonlyargs)


def test_no_public_function_takes_more_than_8_parameters():
    offenders = []
    for m in MODULES.values():
        for name, fn, method in _public_functions(m.tree):
            if name.split(".")[-1].startswith("_"):
                continue
            n = parameter_count(fn, method)
            if n > MAX_PARAMS:
                offenders.append(f"{m.rel}:{fn.lineno}: {name}: {n} parameters")
    assert not offenders, f"public functions with more than {MAX_PARAMS} parameters:\n" + "\n".join(offenders)


def test_the_checks_see_what_they_look_for():
    """The parser itself: a relative import inside a function, a compute, a long signature."""
    tree = ast.parse("def f(a, b, /, c, *args, d, e=1, **kw):\n    from ..io import writers\n    x.compute()\n")
    m = Module("urst_dask.metrics.example", PACKAGE / "metrics" / "example.py", False, tree)
    assert imports(m) == [("urst_dask.io.writers", 2)]
    assert [_called(n) for n in ast.walk(tree) if isinstance(n, ast.Call)] == ["x.compute("]
    fn = tree.body[0]
    assert isinstance(fn, ast.FunctionDef) and parameter_count(fn, False) == 5
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    io_tree = ast.parse("import zarr\nfrom PIL import Image\ndef f(p):\n    p.write_text('x')\n    torch.save(1, p)\n")
    assert _library_imports(io_tree) == [("zarr", 1), ("PIL", 2)]
    assert _file_calls(io_tree) == [("p.write_text", 4), ("torch.save", 5)]
