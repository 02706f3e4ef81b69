"""The package's imports, read from the source with ast: no circle, and none that runs back up the layers.

Every import counts, the ones inside functions too: a lazy import still ties two modules together,
and a circle of lazy imports is how `train`, `evaluate` and the text stages grew into one knot.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "emodetect"

# The layers, lowest first; a module may import from its own layer or a lower one. The first
# pattern a module's dotted name (without "emodetect.") matches gives its layer; the rest are
# inference (the base install: onnxruntime, numpy, OpenCV).
FOUNDATION, INFERENCE, TRAINING, APPLICATION, FRONT = range(5)
LAYER_NAMES = ("foundation", "inference", "training", "application", "front")
LAYERS = (
    # the command line and the service: nothing imports them but themselves
    (FRONT, r"(__main__|cli|console|.*\.cli|serve(\..*)?)"),
    # several modalities or stages at once (a video's faces, voice and words; batch inference;
    # model cards; a report on many texts, which quotes the model's card)
    (APPLICATION, r"(multimodal|distributed|cards|text\.report.*)"),
    # torch: training, evaluation on checkpoints, export, each modality's data and networks
    (TRAINING, r"(train|evaluate|export|checkpoint|registry|layers|.*\.data|.*\.models|.*\.augment"
               r"|text\.distill|text\.encoder|text\.mpnet|vision\.tfjs)"),
    # shared by everything: the error family, labels, configs, metrics, result readers
    (FOUNDATION, r"(|errors|labels|heads|config|metrics|results)"),
)


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> int:
    short = module.removeprefix("emodetect").removeprefix(".")
    return next((rank for rank, pattern in LAYERS if re.fullmatch(pattern, short)), INFERENCE)


def _runtime_nodes(tree: ast.AST):
    """Every node of the tree but those under `if TYPE_CHECKING:` (annotations only: never run)."""
    for node in ast.iter_child_nodes(tree):
        test = node.test if isinstance(node, ast.If) else None
        if test is not None and "TYPE_CHECKING" in ast.unparse(test):
            yield from (n for child in node.orelse for n in [child, *_runtime_nodes(child)])
            continue
        yield node
        yield from _runtime_nodes(node)


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (at any depth of its code)."""
    files = {module_name(p, package): p for p in package.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        found: set[str] = set()
        here = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = here.split(".")[:len(here.split(".")) - (node.level - 1)]
                    base = ".".join(anchor + ([node.module] if node.module else []))
                # `from package import module` imports the module; `from module import name`, the module
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in files else base
                           for alias in node.names]
            else:
                continue
            for target in targets:
                while target and target not in files:
                    target = target.rpartition(".")[0]
                if target and target != module:
                    found.add(target)
        graph[module] = found
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{m} ({LAYER_NAMES[layer(m)]}) imports {t} ({LAYER_NAMES[layer(t)]})"
                  for m, targets in graph.items() for t in targets if layer(t) > layer(m))


def test_the_package_has_no_import_circle():
    graph = import_graph()
    assert "emodetect.train" in graph and "emodetect.text.pipeline" in graph  # the walk found the package
    assert circles(graph) == []


def test_no_import_runs_back_up_the_layers():
    assert upward_imports(import_graph()) == []


def test_the_checks_see_a_circle_and_an_upward_import(tmp_path):
    """The two checks on a made-up package: a lazy import closing a circle, and an inference
    module reaching into training code, are both found."""
    package = tmp_path / "emodetect"
    (package / "text").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "text" / "__init__.py").write_text("")
    (package / "text" / "pipeline.py").write_text("def f():\n    from emodetect.text.data import g\n")
    (package / "text" / "data.py").write_text("from emodetect.text import pipeline\nfrom . import pipeline as p\n"
                                              "if TYPE_CHECKING:\n    from emodetect import cli\n")
    (package / "cli.py").write_text("")
    graph = import_graph(package)
    assert graph["emodetect.text.data"] == {"emodetect.text.pipeline"}
    assert circles(graph) == [["emodetect.text.data", "emodetect.text.pipeline"]]
    assert upward_imports(graph) == ["emodetect.text.pipeline (inference) imports emodetect.text.data (training)"]
