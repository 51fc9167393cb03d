"""`roomwire deploy`, `versions` and `rollback`: validate bundles, store them, move the current pointer.

A deploy: pack (runtime/bundle.py) → import in a throwaway interpreter (cli/validate.py: import
errors, bad policies, apps without room types and unmet requirements are refused there) → refuse
if a live room's type is missing from the new version → store the bundle (signed with the deploy
key when one is set) → mark it current. Any refusal happens before the pointer moves: the
current version and every room stay as they were.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from roomwire.backends.base import Backend
from roomwire.cli.status import read_status
from roomwire.errors import DeployError
from roomwire.runtime.bundle import Bundle, check_requirements
from roomwire.runtime.versions import (
    VersionInfo,
    current_version,
    delete_version,
    list_versions,
    load_bundle,
    resolve_version,
    set_current,
    store_version,
    version_info,
)

VALIDATE_TIMEOUT_S = 60.0
MIN_KEY_CHARS = 16
# After the pointer moves, lobbies may still pin new rooms to the replaced version for up to
# CURRENT_CACHE_S: prune keeps that version this long (runtime/versions.py).
_RECENT_PREFIX = "rw:deploy:replaced:"
_RECENT_TTL_S = 5.0


@dataclass(frozen=True)
class Validated:
    """What importing a bundle showed."""

    app: str
    room_types: list[str]


@dataclass(frozen=True)
class Switched:
    """The outcome of a deploy or rollback."""

    version: str
    replaced: str | None  # the previous current version (None: first deploy)


@dataclass(frozen=True)
class VersionRow:
    """One line of `roomwire versions`."""

    info: VersionInfo
    is_current: bool
    rooms: int
    workers: list[str]  # workers whose latest report shows a room of this version


def validate(bundle: Bundle, timeout_s: float = VALIDATE_TIMEOUT_S) -> Validated:
    """Write the bundle to a temporary folder and import it in a new interpreter; DeployError if refused."""
    with tempfile.TemporaryDirectory(prefix=f"roomwire-{bundle.version}-") as folder:
        write_files(bundle, Path(folder))
        cmd = [sys.executable, "-m", "roomwire.cli.validate", bundle.entry]
        if bundle.attribute:
            cmd += ["--app", bundle.attribute]
        try:
            done = subprocess.run(
                cmd, cwd=folder, capture_output=True, text=True, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise DeployError(f"importing the app took over {timeout_s:.0f} s; refused") from exc
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip() or f"exit status {done.returncode}"
        raise DeployError(f"version {bundle.version} refused:\n{detail}")
    lines = done.stdout.strip().splitlines()
    try:  # the last line: the app's own prints at import time come before it
        found = json.loads(lines[-1])
        return Validated(str(found["app"]), [str(t) for t in found["room_types"]])
    except (IndexError, ValueError, KeyError, TypeError) as exc:
        raise DeployError(f"validating version {bundle.version} gave no answer:\n{done.stdout}") from exc


def write_files(bundle: Bundle, folder: Path) -> None:
    """Write the bundle's files under folder (paths were checked when the bundle was read)."""
    for name, data in bundle.files.items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


async def _check_live_types(backend: Backend, version: str, room_types: list[str]) -> None:
    # A live room's type must stay known: a lobby serving this version seats players in it.
    missing: dict[str, int] = {}
    for record in await backend.list_rooms():
        if record.type not in room_types:
            missing[record.type] = missing.get(record.type, 0) + 1
    if missing:
        named = ", ".join(f"{name!r} ({n} rooms)" for name, n in sorted(missing.items()))
        raise DeployError(
            f"version {version} has no room type {named} that live rooms use; "
            "keep the type until those rooms end"
        )


async def publish(backend: Backend, bundle: Bundle, validated: Validated, key: str | None) -> Switched:
    """Store a validated bundle, make it current; DeployError if a live room's type is gone."""
    await _check_live_types(backend, bundle.version, validated.room_types)
    info = version_info(bundle, validated.app, validated.room_types, signed=key is not None)
    await store_version(backend, bundle, info, key)
    return await _switch(backend, bundle.version)


async def rollback(backend: Backend, given: str, key: str | None) -> Switched:
    """Make a stored version current again (a deploy of it without rebuilding); DeployError if refused.

    The stored bundle is verified (unchanged since its deploy; signed, when a key is set), its
    requirements are checked here, and live rooms' types must be among its room types.
    """
    info = await resolve_version(backend, given)
    bundle = await load_bundle(backend, info.version, key)
    problems = check_requirements(bundle.requirements)
    if problems:
        raise DeployError(
            f"version {info.version}: requirements.txt is not satisfied here:\n  " + "\n  ".join(problems)
        )
    await _check_live_types(backend, info.version, info.room_types)
    return await _switch(backend, info.version)


async def _switch(backend: Backend, version: str) -> Switched:
    old = await current_version(backend)
    if old is not None and old != version:
        await backend.kv_set(_RECENT_PREFIX + old, b"1", ttl_s=_RECENT_TTL_S)
    await set_current(backend, version)
    return Switched(version, old)


async def version_rows(backend: Backend) -> tuple[list[VersionRow], dict[str, int]]:
    """Every stored version (current?, live rooms, workers running them), and the live rooms of
    versions that are not stored (never deployed, or pruned) by version ("" from before versions).

    Rooms of a version no worker runs wait; the second part shows them so an operator can act.
    """
    current = await current_version(backend)
    rooms: dict[str, int] = {}
    versions: dict[str, str] = {}  # room id -> version
    for record in await backend.list_rooms():
        rooms[record.code_version] = rooms.get(record.code_version, 0) + 1
        versions[record.id] = record.code_version
    workers: dict[str, set[str]] = {}
    for room in (await read_status(backend)).rooms:
        if room.worker is not None and room.id in versions:
            workers.setdefault(versions[room.id], set()).add(room.worker)
    rows = []
    for info in await list_versions(backend):
        running = sorted(workers.get(info.version, ()))
        rows.append(VersionRow(info, info.version == current, rooms.pop(info.version, 0), running))
    return rows, rooms


async def prune(backend: Backend) -> list[str]:
    """Remove the versions no live room uses and that are not current (nor were a moment ago)."""
    removed = []
    rows, _ = await version_rows(backend)
    for row in rows:
        if row.is_current or row.rooms:
            continue
        if await backend.kv_get(_RECENT_PREFIX + row.info.version) is not None:
            continue  # lobbies may still pin new rooms to it for a moment
        await delete_version(backend, row.info.version)
        removed.append(row.info.version)
    return removed


def check_key(key: str | None) -> str | None:
    """The deploy key, or None; DeployError when it is too short to be a secret."""
    if key is not None and len(key) < MIN_KEY_CHARS:
        raise DeployError(f"ROOMWIRE_DEPLOY_KEY / --key must be at least {MIN_KEY_CHARS} characters")
    return key or None


def age(seconds_since_epoch: float) -> str:
    """How long ago, for humans ("42 s", "3 min", "5 h", "2 d")."""
    s = max(0.0, time.time() - seconds_since_epoch)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if s >= size:
            return f"{s / size:.0f} {unit}"
    return f"{s:.0f} s"
