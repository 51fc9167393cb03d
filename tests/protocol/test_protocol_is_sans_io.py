"""roomwire.protocol stays sans-I/O: no event loop, no sockets, no clock, nothing from the upper layers."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PROTOCOL_DIR = SRC / "roomwire" / "protocol"

# Top-level modules that do I/O, run an event loop or read the clock.
FORBIDDEN = {
    "asyncio",
    "socket",
    "selectors",
    "ssl",
    "threading",
    "multiprocessing",
    "subprocess",
    "time",
    "anyio",
    "trio",
    "websockets",
    "starlette",
    "uvicorn",
    "httpx",
}


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) for every import in the file, relative ones resolved."""
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    package = ".".join(parts if parts[-1] == "__init__" else parts[:-1]).removesuffix(".__init__")
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - (node.level - 1)])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found.append((node.lineno, module))
    return found


def _modules() -> list[Path]:
    return sorted(PROTOCOL_DIR.rglob("*.py"))


def test_the_protocol_package_is_where_this_test_expects_it() -> None:
    assert (PROTOCOL_DIR / "__init__.py").is_file()
    assert len(_modules()) >= 4


@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.name)
def test_protocol_module_imports_no_io_and_nothing_above_it(path: Path) -> None:
    bad = []
    for line, module in _imports(path):
        top = module.split(".")[0]
        if top in FORBIDDEN:
            bad.append(f"{path.name}:{line} imports {module} (I/O, event loop or clock)")
        if top == "roomwire" and not (module + ".").startswith("roomwire.protocol."):
            bad.append(f"{path.name}:{line} imports {module} (outside roomwire.protocol)")
    assert not bad, "roomwire.protocol must stay sans-I/O:\n" + "\n".join(bad)
