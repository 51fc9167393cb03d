"""Imports point downward only: protocol < backends < runtime < gateway < cli; clients use only protocol.

Parses every module's imports (including those under `if TYPE_CHECKING:`) without importing anything.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
CLIENT_SRC = ROOT / "clients" / "python"

# Layer of each part of roomwire; an import may only point to the same or a lower layer.
LAYERS: dict[str, int] = {
    "roomwire.protocol": 0,
    "roomwire.errors": 0,  # the public error tree: protocol-level, every layer raises from it
    "roomwire.backends": 10,
    "roomwire.runtime": 20,
    "roomwire.gateway": 30,
    "roomwire.app": 35,  # App assembles runtime and gateway into what a game developer declares
    "roomwire": 35,  # the package root re-exports the public API, App included
    "roomwire.cli": 40,
    "roomwire.__main__": 40,
}
# Modules that may import everything: the package root (it only re-exports) and the testing kit
# (it drives every layer). As an import target, testing counts as the top layer.
ANY_IMPORTS = {"roomwire", "roomwire.testing"}
TOP = 100


def _module_name(path: Path, base: Path) -> str:
    parts = list(path.relative_to(base).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _imports(path: Path, base: Path, known: set[str]) -> list[tuple[int, str]]:
    """(line, absolute target) of every import in a file; `from p import m` targets p.m if that exists."""
    module = _module_name(path, base)
    package = module if _is_package(path) else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                pieces = package.split(".")
                base_pkg = ".".join(pieces[: len(pieces) - (node.level - 1)])
                source = f"{base_pkg}.{node.module}" if node.module else base_pkg
            else:
                source = node.module or ""
            for alias in node.names:
                candidate = f"{source}.{alias.name}"
                found.append((node.lineno, candidate if candidate in known else source))
    return found


def _known_modules(base: Path) -> dict[str, Path]:
    return {_module_name(p, base): p for p in sorted(base.rglob("*.py"))}


def _layer(module: str) -> int | None:
    if module == "roomwire.testing" or module.startswith("roomwire.testing."):
        return TOP
    if module in LAYERS:
        return LAYERS[module]
    for prefix, layer in LAYERS.items():
        if prefix != "roomwire" and module.startswith(prefix + "."):
            return layer
    return None


ROOMWIRE = _known_modules(SRC)
CLIENT = _known_modules(CLIENT_SRC)


def test_the_trees_are_where_this_test_expects_them() -> None:
    assert "roomwire.protocol.frames" in ROOMWIRE
    assert "roomwire_client" in CLIENT


def test_every_roomwire_module_belongs_to_a_layer() -> None:
    orphans = [m for m in ROOMWIRE if _layer(m) is None]
    assert not orphans, f"add these modules' layer to LAYERS in {Path(__file__).name}: {orphans}"


@pytest.mark.parametrize("module", sorted(ROOMWIRE), ids=str)
def test_imports_point_downward(module: str) -> None:
    path = ROOMWIRE[module]
    own = _layer(module)
    bad = []
    for line, target in _imports(path, SRC, set(ROOMWIRE)):
        top = target.split(".")[0]
        # Only the command line drives a server from outside (`roomwire bench`), so only it may
        # use the Python client; nothing the server runs depends on its own clients.
        if top == "roomwire_client" and not module.startswith("roomwire.cli"):
            bad.append(f"line {line}: {target} (roomwire never imports its own clients)")
        if top != "roomwire" or module in ANY_IMPORTS or module.startswith("roomwire.testing."):
            continue
        target_layer = _layer(target)
        if own is not None and target_layer is not None and target_layer > own:
            bad.append(f"line {line}: {target} (layer {target_layer}) from layer {own}")
    assert not bad, f"{module} imports upward:\n" + "\n".join(bad)


@pytest.mark.parametrize("module", sorted(CLIENT), ids=str)
def test_python_client_imports_only_the_protocol_from_roomwire(module: str) -> None:
    bad = [
        f"line {line}: {target}"
        for line, target in _imports(CLIENT[module], CLIENT_SRC, set(CLIENT))
        if target.split(".")[0] == "roomwire"
        and target != "roomwire.protocol"
        and not target.startswith("roomwire.protocol.")
    ]
    assert not bad, f"{module} may import only roomwire.protocol from roomwire:\n" + "\n".join(bad)


def test_the_import_parser_resolves_relative_and_from_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "roomwire" / "backends"
    pkg.mkdir(parents=True)
    (tmp_path / "roomwire" / "__init__.py").write_text("")
    (tmp_path / "roomwire" / "errors.py").write_text("")
    (pkg / "__init__.py").write_text("")
    probe = pkg / "probe.py"
    probe.write_text(
        "from __future__ import annotations\n"
        "import asyncio\n"
        "from . import records\n"
        "from ..runtime import room\n"
        "from roomwire import errors, App\n"
    )
    known = {"roomwire", "roomwire.errors", "roomwire.backends", "roomwire.backends.probe"}
    targets = [t for _, t in _imports(probe, tmp_path, known)]
    assert targets == [
        "__future__",
        "asyncio",
        "roomwire.backends",
        "roomwire.runtime",
        "roomwire.errors",
        "roomwire",
    ]
    assert _layer("roomwire.runtime") == 20
    assert _layer("roomwire.backends.probe") == 10
    assert _layer("roomwire.testing.server") == TOP
    assert _layer("roomwire.nothing") is None
