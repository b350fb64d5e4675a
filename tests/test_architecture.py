"""The dependency rule: `bot` (the domain) imports no vendor SDK and no adapter package."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The composition root: the only modules of `bot` that wire adapters in.
COMPOSITION_ROOT = {"bot/cli.py", "bot/demo.py", "bot/runtime.py", "bot/__main__.py"}
FORBIDDEN = {
    "handlers",
    "integrations",
    "slack_bolt",
    "slack_sdk",
    "botbuilder",
    "tweepy",
    "openai",
    "apscheduler",
    "aiohttp",
    "requests",
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize(
    "module",
    sorted(str(p.relative_to(ROOT)) for p in (ROOT / "bot").rglob("*.py")),
)
def test_domain_modules_import_no_adapters_or_sdks(module: str) -> None:
    if module in COMPOSITION_ROOT:
        pytest.skip("composition root")
    bad = _imports(ROOT / module) & FORBIDDEN
    assert not bad, f"{module} imports {sorted(bad)}; put that code in handlers/ or integrations/"


@pytest.mark.parametrize(
    "module", sorted(str(p.relative_to(ROOT)) for p in (ROOT / "handlers").rglob("*.py"))
)
def test_handlers_do_not_import_integrations(module: str) -> None:
    assert "integrations" not in _imports(ROOT / module)


def _bot_imports(path: Path) -> set[str]:
    """Modules of `bot` that `path` imports, at any depth of the file (lazy imports too)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "bot":
                found.update(f"bot.{alias.name}" for alias in node.names)
            elif node.module.startswith("bot."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("bot."))
    return found


def test_the_domain_has_no_import_cycles() -> None:
    """Each use-case module only reaches down: no two modules of `bot` import each other,
    directly or around a loop (the composition root aside)."""
    graph = {
        f"bot.{p.stem}": _bot_imports(p)
        for p in (ROOT / "bot").glob("*.py")
        if str(p.relative_to(ROOT)) not in COMPOSITION_ROOT
    }

    def reach(start: str) -> set[str]:
        seen: set[str] = set()
        todo = [start]
        while todo:
            for nxt in graph.get(todo.pop(), set()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    cycles = sorted(m for m in graph if m in reach(m))
    assert not cycles, f"import cycles through {cycles}"
