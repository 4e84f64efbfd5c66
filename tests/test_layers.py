"""The package's layering, checked from the source text (``ast``; nothing of lmk is imported).

Every module of ``lmk`` belongs to one layer of ``LAYERS`` (lowest first) and may import only
modules of its own layer or lower ones; imports inside functions, methods and ``if`` blocks count
too. There are no import cycles between modules, no imports of lmk modules by string (they would
hide edges from this check), and only ``lmk.families`` switches on a model-kind string or a
notebook number.

The checks are functions of a package root and a layer list, so that the first tests below can
run them on small synthetic packages and show that each of them does fail.
"""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass
from pathlib import Path

import pytest

LMK = Path(__file__).resolve().parents[1] / "lmk"

# (name, module prefixes), lowest layer first. A module belongs to the layer of the longest entry
# that equals it or is a package prefix of it (``lmk.recipes.__main__`` is not ``lmk.recipes``).
# Entries need not exist yet; every file under lmk/ must be placed.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundations", ("lmk._backend", "lmk.geometry", "lmk.layouts", "lmk.ops", "lmk.checkpoints",
                     "lmk.progress", "lmk.quantization", "lmk.compare", "lmk.complexity",
                     "lmk.param_groups", "lmk.distributed")),
    ("building blocks", ("lmk.codecs", "lmk.models", "lmk.losses", "lmk.data", "lmk.metrics",
                         "lmk.multitask_metrics")),
    ("loops and tools", ("lmk.train", "lmk.track", "lmk.evaluation", "lmk.scoring",
                         "lmk.deploy", "lmk.viz", "lmk.params")),
    ("zoo store", ("lmk.store",)),
    ("model families", ("lmk.families",)),
    ("recipes (pure data)", ("lmk.recipes",)),
    ("using zoo models and the training command", ("lmk.zoo", "lmk.experiments", "lmk.runs", "lmk.reproduce")),
    ("notebook helpers", ("lmk.lessons",)),
    ("top", ("lmk.course", "lmk.bench", "lmk.recipes.__main__")),
    ("deprecated aliases kept for old import paths", ("lmk.multitask_run", "lmk.multitask_eval",
                                                      "lmk.cascade_eval", "lmk.landscape")),
]

# Only this package may switch on a model kind or a notebook number.
SWITCH_ALLOWED = ("lmk.families",)
SWITCH_KEYS = ("model", "notebook")
STRING_IMPORTERS = ("import_module", "__import__", "find_spec")


# --------------------------------------------------------------------------------- the walker


@dataclass(frozen=True)
class Module:
    name: str        # "lmk.models.atpn"; a package's __init__ is the package: "lmk.models"
    path: Path
    is_package: bool


@dataclass(frozen=True)
class Import:
    importer: str
    where: str       # "lmk/zoo.py:42"
    target: str      # an absolute module name under the root package


def modules(root: Path) -> dict[str, Module]:
    """Every ``.py`` file under ``root``, by module name (the root's directory name first)."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if any(p == "__pycache__" or p.startswith(".") for p in parts):
            continue
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        name = ".".join((root.name, *parts))
        found[name] = Module(name, path, is_package)
    return found


def _where(root: Path, module: Module, node: ast.AST) -> str:
    return f"{module.path.relative_to(root.parent).as_posix()}:{node.lineno}"


def _in_order(problems: list[str]) -> list[str]:
    """Sorted by file, then line number ("lmk/zoo.py:42: ...")."""
    def key(text):
        path, _, rest = text.partition(":")
        line = rest.partition(":")[0]
        return (path, int(line) if line.isdigit() else 0, text)
    return sorted(problems, key=key)


def _parse(module: Module) -> ast.Module:
    stat = module.path.stat()
    return _parse_file(str(module.path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=None)
def _parse_file(path: str, mtime_ns: int, size: int) -> ast.Module:
    """Parsed once per version of a file (the checks below each walk every module)."""
    return ast.parse(Path(path).read_text(encoding="utf-8"), filename=path)


def _is_module(root: Path, name: str) -> bool:
    """Whether the dotted name (under the root package) is a module file or a package dir."""
    rel = Path(*name.split(".")[1:]) if "." in name else Path()
    return (root / rel).with_suffix(".py").is_file() or (root / rel).is_dir()


def imports(root: Path) -> list[Import]:
    """Every import of a module of the root package (see ``_imports``), remembered while no file
    under the root changes."""
    snapshot = tuple((m.name, m.path.stat().st_mtime_ns, m.path.stat().st_size)
                     for m in modules(root).values())
    return list(_imports(root, snapshot))


@functools.lru_cache(maxsize=None)
def _imports(root: Path, snapshot) -> tuple[Import, ...]:
    """Every import of a module of the root package, wherever it stands in the file.

    ``from pkg import name`` imports ``pkg.name`` when that is a module or a package, else ``pkg``
    (its ``__init__``); ``from .sibling import x`` imports ``pkg.sibling`` only, not the package's
    ``__init__`` (which Python also runs, but which a package's own modules depend on only when
    they import a name from it).
    """
    top = root.name
    found = []
    for module in modules(root).values():
        package = module.name if module.is_package else module.name.rpartition(".")[0]
        for node in ast.walk(_parse(module)):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base_parts = package.split(".")
                    if node.level - 1 >= len(base_parts):
                        raise AssertionError(f"{_where(root, module, node)}: relative import "
                                             f"beyond the top-level package")
                    base = ".".join(base_parts[: len(base_parts) - (node.level - 1)])
                    base = f"{base}.{node.module}" if node.module else base
                else:
                    base = node.module
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    is_sub = (alias.name != "*" and (sub == top or sub.startswith(top + "."))
                              and _is_module(root, sub))
                    targets.append(sub if is_sub else base)
            for target in dict.fromkeys(targets):
                if target == top or target.startswith(top + "."):
                    found.append(Import(module.name, _where(root, module, node), target))
    return tuple(found)


def layer_of(name: str, layers) -> int | None:
    """The layer of the longest prefix that covers ``name`` (None: no layer does)."""
    matches = [(len(p), index) for index, (_, prefixes) in enumerate(layers) for p in prefixes
               if name == p or name.startswith(p + ".")]
    return max(matches)[1] if matches else None


def _layer_label(index: int, layers) -> str:
    return f"layer {index} ({layers[index][0]})"


# --------------------------------------------------------------------------------- the checks


def unplaced_modules(root: Path, layers) -> list[str]:
    """Files that belong to no declared layer (the root ``__init__`` is exempt)."""
    return [f"{m.path.relative_to(root.parent).as_posix()}: {m.name} belongs to no layer; "
            f"add it to LAYERS in tests/test_layers.py"
            for m in modules(root).values() if m.name != root.name and layer_of(m.name, layers) is None]


def root_imports(root: Path) -> list[str]:
    """The root ``__init__`` may be imported by every module, so it must import none of them."""
    return _in_order([f"{imp.where}: the root {root.name}/__init__.py imports {imp.target}; it must import "
            f"nothing from {root.name}" for imp in imports(root) if imp.importer == root.name])


def string_imports(root: Path) -> list[str]:
    """Calls of ``importlib.import_module``, ``__import__`` or ``find_spec`` with a string (or an
    f-string): an import this check cannot see."""
    problems = []
    for module in modules(root).values():
        for node in ast.walk(_parse(module)):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name not in STRING_IMPORTERS:
                continue
            args = [*node.args, *(k.value for k in node.keywords if k.arg in ("name", "package"))]
            texts = []
            for arg in args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    texts.append(arg.value)
                elif isinstance(arg, ast.JoinedStr):
                    head = arg.values[0] if arg.values else None
                    texts.append((head.value if isinstance(head, ast.Constant) else "") + "{...}")
            if not texts:
                continue
            ours = texts[0].startswith((root.name, "."))
            what = f"{root.name} module " if ours else ""
            problems.append(f"{_where(root, module, node)}: {name}({', '.join(map(repr, texts))}) "
                            f"imports {what}{texts[0]!r} by string; use an import statement, "
                            f"which the layer check can see")
    return _in_order(problems)


def upward_imports(root: Path, layers) -> list[str]:
    """Imports of a module of a higher layer than the importer's."""
    problems = []
    existing = modules(root)
    for imp in imports(root):
        if imp.importer == root.name or imp.target == root.name:
            continue                 # the root: checked by root_imports, importable by anyone
        low, high = layer_of(imp.importer, layers), layer_of(imp.target, layers)
        if high is None and imp.target not in existing:
            problems.append(f"{imp.where}: {imp.importer} imports {imp.target}, which does not "
                            f"exist and belongs to no layer")
        elif low is not None and high is not None and high > low:
            problems.append(f"{imp.where}: {imp.importer} [{_layer_label(low, layers)}] imports "
                            f"{imp.target} [{_layer_label(high, layers)}]")
    return _in_order(problems)


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components (iterative), each sorted, in a stable order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    components.append(sorted(component))
    return sorted(components)


def import_cycles(root: Path) -> list[str]:
    """Cycles of imports between modules (a package is its ``__init__``), with the imports that
    close them."""
    graph: dict[str, set[str]] = {name: set() for name in modules(root)}
    lines: dict[tuple[str, str], list[str]] = {}
    for imp in imports(root):
        if imp.target == imp.importer:
            continue
        graph[imp.importer].add(imp.target)
        graph.setdefault(imp.target, set())
        lines.setdefault((imp.importer, imp.target), []).append(imp.where)
    problems = []
    for component in strongly_connected(graph):
        if len(component) < 2:
            continue
        members = set(component)
        edges = [f"    {a} -> {b}  ({', '.join(lines[a, b])})"
                 for a in component for b in sorted(graph[a] & members)]
        problems.append(f"import cycle among {', '.join(component)}:\n" + "\n".join(edges))
    return problems


def _is_key(node: ast.AST) -> str | None:
    """``x["model"]`` or ``x.get("model", ...)``: the key, else None."""
    if isinstance(node, ast.Subscript):
        key = node.slice
        if isinstance(key, ast.Constant) and key.value in SWITCH_KEYS:
            return f'[{key.value!r}]'
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get" and node.args and isinstance(node.args[0], ast.Constant)
            and node.args[0].value in SWITCH_KEYS):
        return f'.get({node.args[0].value!r})'
    return None


def _is_constant(node: ast.AST) -> bool:
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return bool(node.elts) and all(_is_constant(e) for e in node.elts)
    return isinstance(node, ast.Constant) and isinstance(node.value, (str, int))


def _is_attribute_switch(node: ast.AST, other: ast.AST) -> str | None:
    if isinstance(node, ast.Attribute) and node.attr in SWITCH_KEYS and _is_constant(other):
        return f".{node.attr}"
    return None


def _is_constant(node) -> bool:
    """A literal (or a tuple / list / set of literals): what a switch compares a kind against.
    A comparison with a variable (``e["notebook"] == notebook``, a filter) is not a switch."""
    if isinstance(node, ast.Constant):
        return True
    return isinstance(node, (ast.Tuple, ast.List, ast.Set)) and all(isinstance(e, ast.Constant) for e in node.elts)


def kind_switches(root: Path, allowed=SWITCH_ALLOWED) -> list[str]:
    """Comparisons (``==``, ``!=``, ``in``, ``not in``) and ``match`` statements on a model kind or
    a notebook number, outside the allowed packages."""
    problems = []
    for module in modules(root).values():
        if any(module.name == p or module.name.startswith(p + ".") for p in allowed):
            continue
        source = module.path.read_text(encoding="utf-8").splitlines()
        for node in ast.walk(_parse(module)):
            found = None
            if isinstance(node, ast.Compare):
                operands = [node.left, *node.comparators]
                for op, left, right in zip(node.ops, operands, operands[1:]):
                    if isinstance(op, (ast.Eq, ast.NotEq, ast.In, ast.NotIn)):
                        found = ((_is_constant(right) and _is_key(left))
                                 or (_is_constant(left) and _is_key(right))
                                 or _is_attribute_switch(left, right)
                                 or _is_attribute_switch(right, left))
                        if found:
                            break
            elif isinstance(node, ast.Match):
                found = _is_key(node.subject) or (
                    isinstance(node.subject, ast.Attribute) and node.subject.attr in SWITCH_KEYS
                    and f".{node.subject.attr}")
            if found:
                problems.append(f"{_where(root, module, node)}: switches on {found}: "
                                f"{source[node.lineno - 1].strip()}")
    return _in_order(problems)


def _report(title: str, problems: list[str]) -> str:
    return f"{len(problems)} {title}:\n" + "\n".join(problems)


# ------------------------------------------------------------ the checks on synthetic packages


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "lmk"
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


SYNTH_LAYERS = [
    ("low", ("lmk.low", "lmk.absent")),    # lmk.absent does not exist: that is allowed
    ("middle", ("lmk.pkg", "lmk.mid")),
    ("high", ("lmk.high", "lmk.families")),
]


def test_walker_resolves_imports(tmp_path):
    root = _package(tmp_path, {
        "__init__.py": "",
        "low.py": "X = 1\n",
        "mid.py": "import lmk.low\nfrom lmk import low as _\nfrom lmk import __version__\n",
        "pkg/__init__.py": "from .a import A\nfrom . import b\n",
        "pkg/a.py": "from .b import B\nfrom ..low import X\nA = 1\n",
        "pkg/b.py": "import os\nfrom lmk.pkg.sub import S\nB = 2\n",
        "pkg/sub/__init__.py": "S = 3\n",
        "high.py": "from .pkg import a, A\n",
    })
    found = {(i.importer, i.target) for i in imports(root)}
    assert found == {
        ("lmk.mid", "lmk.low"), ("lmk.mid", "lmk"),
        ("lmk.pkg", "lmk.pkg.a"), ("lmk.pkg", "lmk.pkg.b"),
        ("lmk.pkg.a", "lmk.pkg.b"), ("lmk.pkg.a", "lmk.low"),
        ("lmk.pkg.b", "lmk.pkg.sub"),
        ("lmk.high", "lmk.pkg.a"), ("lmk.high", "lmk.pkg"),
    }
    # An ordinary package (its __init__ imports its modules, they import siblings) is no cycle.
    assert import_cycles(root) == []
    assert upward_imports(root, SYNTH_LAYERS) == []
    assert unplaced_modules(root, SYNTH_LAYERS) == []


def test_walker_finds_every_violation(tmp_path):
    root = _package(tmp_path, {
        "__init__.py": "from .low import X\n",
        "low.py": ("import importlib\nX = 1\n"
                   "def late():\n    if X:\n        from .high import H\n    return H\n"
                   "class C:\n    def m(self):\n        return importlib.import_module('lmk.mid')\n"
                   "def d(name):\n    return __import__(f'lmk.{name}')\n"),
        "mid.py": "import importlib.util\nSPEC = importlib.util.find_spec('.low', 'lmk')\n",
        "pkg/a.py": "from .b import B\nA = 1\n",
        "pkg/b.py": "def g():\n    from .a import A\n    return A\nB = 2\n",
        "pkg/c.py": "from .. import pkg\n",
        "pkg/d.py": "from . import NAME\n",
        "pkg/__init__.py": "from .a import A\nfrom .c import *\nfrom .d import *\nNAME = 'pkg'\n",
        "high.py": ("H = 1\ndef f(cfg, e, m):\n"
                    "    if cfg['model'] == 'atpn' or 'x' in e['recipe']['notebook']:\n"
                    "        return cfg.get('model') != 'ccnn'\n"
                    "    return m.model in ('ffld', 'yin') or m.model == m.other or cfg['x'] == 1\n"),
        "families/__init__.py": "def f(cfg):\n    return cfg['model'] == 'atpn'\n",
        "stray.py": "from .gone import G\n",
    })
    assert root_imports(root) == ["lmk/__init__.py:1: the root lmk/__init__.py imports lmk.low; "
                                  "it must import nothing from lmk"]
    assert unplaced_modules(root, SYNTH_LAYERS) == [
        "lmk/stray.py: lmk.stray belongs to no layer; add it to LAYERS in tests/test_layers.py"]
    assert upward_imports(root, SYNTH_LAYERS) == [
        "lmk/low.py:5: lmk.low [layer 0 (low)] imports lmk.high [layer 2 (high)]",
        "lmk/stray.py:1: lmk.stray imports lmk.gone, which does not exist and belongs to no layer",
    ]
    strings = string_imports(root)
    assert [":".join(s.split(":")[:2]) for s in strings] == [
        "lmk/low.py:9", "lmk/low.py:11", "lmk/mid.py:2"], strings
    assert "'lmk.mid'" in strings[0] and "'lmk.{...}'" in strings[1]
    assert "find_spec('.low', 'lmk')" in strings[2]
    # pkg.a <-> pkg.b (one import inside a function); pkg.__init__ -> pkg.c and pkg.d, which
    # import the package back (`from .. import pkg`, `from . import NAME`).
    cycles = import_cycles(root)
    assert cycles == [
        "import cycle among lmk.pkg, lmk.pkg.c, lmk.pkg.d:\n"
        "    lmk.pkg -> lmk.pkg.c  (lmk/pkg/__init__.py:2)\n"
        "    lmk.pkg -> lmk.pkg.d  (lmk/pkg/__init__.py:3)\n"
        "    lmk.pkg.c -> lmk.pkg  (lmk/pkg/c.py:1)\n"
        "    lmk.pkg.d -> lmk.pkg  (lmk/pkg/d.py:1)",
        "import cycle among lmk.pkg.a, lmk.pkg.b:\n"
        "    lmk.pkg.a -> lmk.pkg.b  (lmk/pkg/a.py:1)\n"
        "    lmk.pkg.b -> lmk.pkg.a  (lmk/pkg/b.py:2)",
    ]
    switches = kind_switches(root)
    assert [s.split(": switches")[0] for s in switches] == [
        "lmk/high.py:3", "lmk/high.py:3", "lmk/high.py:4", "lmk/high.py:5"], switches
    assert any("['model']" in s for s in switches) and any(".get('model')" in s for s in switches)
    assert any(".model" in s for s in switches)


def test_separate_cycles_are_reported_separately(tmp_path):
    root = _package(tmp_path, {
        "__init__.py": "",
        "a.py": "from . import b\n", "b.py": "from . import a\n",
        "c.py": "def f():\n    import lmk.d\n", "d.py": "import lmk.e\n", "e.py": "import lmk.c\n",
        "f.py": "import lmk.a\n",
    })
    cycles = import_cycles(root)
    assert [c.splitlines()[0] for c in cycles] == [
        "import cycle among lmk.a, lmk.b:", "import cycle among lmk.c, lmk.d, lmk.e:"]


# ---------------------------------------------------------------- the checks on lmk itself


@pytest.mark.parametrize("check, title", [
    (lambda: unplaced_modules(LMK, LAYERS), "modules that belong to no layer"),
    (lambda: root_imports(LMK), "imports in lmk/__init__.py"),
    (lambda: string_imports(LMK), "imports by string"),
    (lambda: upward_imports(LMK, LAYERS), "imports of a higher layer"),
    (lambda: import_cycles(LMK), "import cycles"),
], ids=["every-module-placed", "root-imports-nothing", "no-string-imports", "no-upward-imports",
        "no-import-cycles"])
def test_lmk_layering(check, title):
    problems = check()
    assert not problems, _report(title, problems)


def test_lmk_switches_on_model_kind_only_in_families():
    problems = kind_switches(LMK)
    assert not problems, _report("switches on a model kind or a notebook number outside "
                                 "lmk.families (move them into the family, or look the kind up "
                                 "there)", problems)


def test_a_module_belongs_to_its_longest_prefix():
    layers = [("low", ("lmk.pkg",)), ("high", ("lmk.pkg.__main__",))]
    assert layer_of("lmk.pkg", layers) == 0
    assert layer_of("lmk.pkg.sub", layers) == 0
    assert layer_of("lmk.pkg.__main__", layers) == 1
    assert layer_of("lmk.pkgs", layers) is None
