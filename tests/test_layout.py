"""The layout docs/architecture.md draws, held against the code: the packages import only
downward, only the Triton layer knows Triton's Python API, modules stay small."""

from __future__ import annotations

import ast
import collections
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "livetranslate"
# the modules of livetranslate/ itself: one idea each, used everywhere, importing only each other
FOUNDATIONS = {
    "protocol",
    "languages",
    "glossary",
    "numbers",
    "audio",
    "keys",
    "share",
    "deadline",
    "periodic",
    "settings",
    "actions",
    "words",
}
# what each package may import besides itself (docs/architecture.md); the CLI may use everything
MAY_IMPORT = {
    "foundations": set(),
    "weights": {"foundations"},
    "store": {"foundations"},
    "client": {"foundations"},
    "present": {"foundations"},
    "quality": {"foundations"},
    "stages": {"foundations", "weights"},
    "pipeline": {"foundations", "stages", "store"},
    "triton": {"foundations", "stages", "pipeline", "store", "weights"},
    "launcher": {"foundations", "store", "weights", "client"},  # it drains the pipeline as a client
    "dashboard": {"foundations", "client", "present", "launcher"},
    "gateway": {"foundations", "client", "present"},
}


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path, ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def _part(module: str) -> str:
    name = module.split(".")[1] if "." in module else ""
    return "foundations" if name in FOUNDATIONS else name


def _imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "livetranslate":
                yield from (f"livetranslate.{alias.name}" for alias in node.names)
            else:
                yield node.module
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


def test_at_most_twelve_modules_of_its_own_beside_the_packages():
    own = [p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"]
    assert len(own) <= 12 and set(own) == FOUNDATIONS


def test_nothing_imports_upward():
    wrong = collections.defaultdict(set)
    for path, module in _modules():
        mine = _part(module)
        for imported in _imports(path):
            if not imported.startswith("livetranslate."):
                continue
            theirs = _part(imported)
            if theirs != mine and mine in MAY_IMPORT and theirs not in MAY_IMPORT[mine]:
                wrong[module].add(imported)
    assert dict(wrong) == {}


def test_only_the_triton_layer_imports_triton_python_backend_utils():
    users = [module for path, module in _modules() if "triton_python_backend_utils" in set(_imports(path))]
    assert users and all(module.startswith("livetranslate.triton") for module in users), users
    glue = [p for p in (ROOT / "model_repository").rglob("model.py") if "triton_python_backend_utils" in p.read_text()]
    assert glue == []  # every model.py goes through livetranslate.triton


def test_modules_stay_small_and_long_functions_say_why():
    too_long, unexplained = [], []
    for path, module in _modules():
        text = path.read_text()
        if text.count("\n") > 400:
            too_long.append(module)
        lines = text.split("\n")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 60:
                head = "\n".join(lines[node.lineno - 1 : node.end_lineno])
                if not re.search(r"# One piece: ", head):
                    unexplained.append(f"{module}.{node.name}")
    assert too_long == [] and unexplained == []


def test_the_lua_of_the_redis_store_lives_in_lua_files():
    scripts = sorted(p.stem for p in (PACKAGE / "store" / "lua").glob("*.lua"))
    assert {"append", "acquire", "renew", "release", "handover", "reap"} <= set(scripts)
    for path, _ in _modules():
        assert "redis.call(" not in path.read_text(), path
