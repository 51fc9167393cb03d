"""`roomwire deploy`, `versions` and `rollback` as an operator runs them, on a real Redis.

Every refusal is checked the same way: exit status 1, a message naming what to fix, and the
current version unchanged in the engine.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from roomwire.backends import backend_from_url
from roomwire.backends.base import Backend
from roomwire.backends.records import CreateInput, RoomRecord
from roomwire.cli.deploy import prune
from roomwire.runtime.bundle import Bundle, SealedBundle, pack
from roomwire.runtime.versions import BUNDLE_PREFIX, CURRENT_KEY
from roomwire_client import Client

ROOMWIRE = str(Path(sys.executable).with_name("roomwire"))
KEY = "deploy-key-0123456789abcdef"
TIMEOUT_S = 60.0


def _write_app(folder: Path, flavour: str, rooms: tuple[str, ...] = ("duel",), extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["from roomwire import App", "import rules", 'app = App("game")']
    for name in rooms:
        lines += [f'{name} = app.room("{name}")', "", f'@{name}.message("ping")']
        lines += ["def ping(room, player, msg):", "    room.broadcast(rules.FLAVOUR)", ""]
    (folder / "app.py").write_text("\n".join(lines) + extra + "\n")
    (folder / "rules.py").write_text(f"FLAVOUR = {flavour!r}\n")
    return folder


@pytest.fixture
async def engine(require_engine: Callable[[str, str, int], None]) -> AsyncIterator[tuple[str, Backend]]:
    """A Redis URL on a fresh namespace and an open backend on it; the namespace is dropped after."""
    require_engine("redis", "127.0.0.1", 6379)
    url = f"redis://127.0.0.1:6379/0?namespace=t-{uuid.uuid4().hex[:12]}"
    backend = backend_from_url(url)
    await backend.open()
    try:
        yield url, backend
    finally:
        await backend.drop_all()
        await backend.aclose()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _cli(*args: str, key: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "ROOMWIRE_DEPLOY_KEY"}
    if key is not None:
        env["ROOMWIRE_DEPLOY_KEY"] = key
    return await asyncio.to_thread(
        subprocess.run,
        [ROOMWIRE, *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
        env=env,
    )


async def _current(backend: Backend) -> str | None:
    raw = await backend.kv_get(CURRENT_KEY)
    return None if raw is None else raw.decode()


async def _versions(url: str, *extra: str) -> dict[str, Any]:
    done = await _cli("versions", "--backend", url, "--json", *extra)
    assert done.returncode == 0, done.stderr
    found: dict[str, Any] = json.loads(done.stdout)
    return found


async def test_deploy_versions_and_rollback_move_the_current_version(
    tmp_path: Path, engine: tuple[str, Backend]
) -> None:
    url, backend = engine
    v1 = pack(_write_app(tmp_path / "v1", "one")).version
    v2 = pack(_write_app(tmp_path / "v2", "two")).version

    first = await _cli("deploy", str(tmp_path / "v1"), "--backend", url)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == f"version {v1} (current), first deploy"
    second = await _cli("deploy", str(tmp_path / "v2"), "--backend", url)
    assert second.stdout.strip() == f"version {v2} (current), replaced {v1}"
    again = await _cli("deploy", str(tmp_path / "v2"), "--backend", url)
    assert again.stdout.strip() == f"version {v2} (current), already current"
    assert await _current(backend) == v2

    listed = await _versions(url)
    assert [(v["version"], v["current"], v["rooms"]) for v in listed["versions"]] == [
        (v1, False, 0),
        (v2, True, 0),
    ]
    assert listed["versions"][0]["room_types"] == ["duel"]
    table = await _cli("versions", "--backend", url)
    assert v1 in table.stdout and "current" in table.stdout

    started = time.monotonic()
    back = await _cli("rollback", v1[:7], "--backend", url)  # a unique prefix is enough
    assert back.returncode == 0, back.stderr
    assert back.stdout.strip() == f"version {v1} (current), replaced {v2}"
    assert await _current(backend) == v1
    print(f"\nrollback to {v1} by prefix: {time.monotonic() - started:.2f} s for the whole command")

    unknown = await _cli("rollback", "ffffffff", "--backend", url)
    assert unknown.returncode == 1 and "no stored version 'ffffffff'" in unknown.stderr


async def test_bundles_that_fail_are_refused_and_change_nothing(
    tmp_path: Path, engine: tuple[str, Backend]
) -> None:
    url, backend = engine
    good = await _cli("deploy", str(_write_app(tmp_path / "good", "one")), "--backend", url)
    assert good.returncode == 0, good.stderr
    current = await _current(backend)

    broken = _write_app(tmp_path / "broken", "two")
    (broken / "rules.py").write_text("import no_such_module_anywhere\n")
    bad_policy = _write_app(tmp_path / "policy", "three", extra='\napp.room("crowd", max_players=0)')
    needs = _write_app(tmp_path / "needs", "four")
    (needs / "requirements.txt").write_text("msgspec>=0.1\nno-such-package-roomwire-test>=2\n")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "app.py").write_text('from roomwire import App\napp = App("game")\n')
    cases = {
        broken: "No module named 'no_such_module_anywhere'",
        bad_policy: "max_players must be at least 1",
        needs: "missing: no-such-package-roomwire-test",
        empty: "declares no room types",
        tmp_path / "nothing": "no such file or folder",
    }
    for folder, reason in cases.items():
        done = await _cli("deploy", str(folder), "--backend", url)
        assert done.returncode == 1, (folder, done.stdout, done.stderr)
        assert reason in done.stderr, (folder, done.stderr)
        assert await _current(backend) == current, folder
    listed = await _versions(url)
    assert [v["version"] for v in listed["versions"]] == [current]  # nothing refused was stored


async def test_a_version_without_a_room_type_live_rooms_use_is_refused(
    tmp_path: Path, engine: tuple[str, Backend]
) -> None:
    url, backend = engine
    v1 = pack(_write_app(tmp_path / "v1", "one", rooms=("duel", "arena"))).version
    assert (await _cli("deploy", str(tmp_path / "v1"), "--backend", url)).returncode == 0
    record = RoomRecord(id="r1", type="arena", max_players=4, created_at=time.time(), code_version=v1)
    await backend.create_room(record, CreateInput({}, time.time()))

    done = await _cli("deploy", str(_write_app(tmp_path / "v2", "two", rooms=("duel",))), "--backend", url)
    assert done.returncode == 1
    assert "no room type 'arena' (1 rooms) that live rooms use" in done.stderr
    assert await _current(backend) == v1
    listed = await _versions(url)
    assert [(v["version"], v["rooms"]) for v in listed["versions"]] == [(v1, 1)]


async def test_with_a_deploy_key_unsigned_and_tampered_bundles_are_refused(
    tmp_path: Path, engine: tuple[str, Backend]
) -> None:
    url, backend = engine
    unsigned = pack(_write_app(tmp_path / "unsigned", "one")).version
    signed = pack(_write_app(tmp_path / "signed", "two")).version
    assert (await _cli("deploy", str(tmp_path / "unsigned"), "--backend", url)).returncode == 0
    done = await _cli("deploy", str(tmp_path / "signed"), "--backend", url, key=KEY)
    assert done.returncode == 0, done.stderr
    assert {v["version"]: v["signed"] for v in (await _versions(url))["versions"]} == {
        unsigned: False,
        signed: True,
    }

    refused = await _cli("rollback", unsigned, "--backend", url, key=KEY)
    assert refused.returncode == 1 and f"version {unsigned} is unsigned" in refused.stderr
    wrong = await _cli("rollback", signed, "--backend", url, key="another-key-0123456789")
    assert wrong.returncode == 1 and "signature does not match" in wrong.stderr
    short = await _cli("rollback", signed, "--backend", url, key="short")
    assert short.returncode == 1 and "at least 16 characters" in short.stderr
    assert await _current(backend) == signed

    # Someone with write access to the engine replaces the stored code of the unsigned version.
    raw = await backend.kv_get(BUNDLE_PREFIX + unsigned)
    assert raw is not None
    sealed = msgspec.msgpack.decode(raw, type=SealedBundle)
    original = Bundle.from_archive(sealed.archive)
    forged = Bundle.from_files(original.entry, "", {**original.files, "rules.py": b"FLAVOUR = 'evil'\n"})
    await backend.kv_set(BUNDLE_PREFIX + unsigned, msgspec.msgpack.encode(SealedBundle(forged.archive)))
    tampered = await _cli("rollback", unsigned, "--backend", url)  # refused even without a key
    assert tampered.returncode == 1 and "was changed" in tampered.stderr
    assert await _current(backend) == signed


async def test_prune_removes_only_versions_no_room_uses_and_not_current(
    tmp_path: Path, engine: tuple[str, Backend]
) -> None:
    url, backend = engine
    ids = []
    for name in ("a", "b", "c"):
        folder = _write_app(tmp_path / name, name)
        ids.append(pack(folder).version)
        assert (await _cli("deploy", str(folder), "--backend", url)).returncode == 0
    a, b, c = ids
    record = RoomRecord(id="r1", type="duel", max_players=4, created_at=time.time(), code_version=a)
    await backend.create_room(record, CreateInput({}, time.time()))

    # b was current a moment ago: lobbies may still pin new rooms to it, so it is kept for now
    # (checked in-process: the marker lasts a few seconds, a CLI start may take that long here).
    assert await backend.kv_get(f"rw:deploy:replaced:{b}") is not None
    assert await prune(backend) == []
    await backend.kv_delete(f"rw:deploy:replaced:{b}")  # as when that moment has passed
    pruned = await _versions(url, "--prune")
    assert pruned["pruned"] == [b]
    assert [(v["version"], v["current"], v["rooms"]) for v in pruned["versions"]] == [
        (a, False, 1),
        (c, True, 0),
    ]
    assert await backend.kv_get(BUNDLE_PREFIX + b) is None

    # A room of a version that is not stored (never deployed) is shown, so nobody misses it.
    now = time.time()
    stray = RoomRecord(id="r2", type="duel", max_players=4, created_at=now, code_version="0badc0ffee00")
    await backend.create_room(stray, CreateInput({}, time.time()))
    listed = await _versions(url)
    assert listed["undeployed_rooms"] == {"0badc0ffee00": 1}
    table = await _cli("versions", "--backend", url)
    assert "1 live room(s) of version 0badc0ffee00, which is not stored" in table.stdout


def _serve_one_process(app: Path, data: Path, port: int) -> subprocess.Popen[str]:
    args = [ROOMWIRE, "serve", str(app), "--backend", f"sqlite:///{data}", "--port", str(port)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stderr is not None
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if "serving" in line:
            return proc
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError(f"roomwire serve did not start (exit {proc.poll()})")


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


async def test_one_process_on_sqlite_runs_its_old_rooms_after_a_code_change(tmp_path: Path) -> None:
    # One process on an embedded backend is the only worker there is: its rooms must not wait
    # for a worker of the version they were created with (there will never be one).
    app = _write_app(tmp_path / "game", "one")
    data, port = tmp_path / "rooms.db", _free_port()
    proc = await asyncio.to_thread(_serve_one_process, app / "app.py", data, port)
    try:
        async with Client(f"http://127.0.0.1:{port}") as client:
            await client.login_guest()
            room = await client.create("duel")
            await room.request("ping")
            assert (await room.next_event()).type == "one"
            room_id = room.id
    finally:
        await asyncio.to_thread(_stop, proc)
    (app / "rules.py").write_text("FLAVOUR = 'two'\n")  # new code, another version id
    proc = await asyncio.to_thread(_serve_one_process, app / "app.py", data, port)
    try:
        async with Client(f"http://127.0.0.1:{port}", join_timeout_s=TIMEOUT_S) as client:
            await client.login_guest()
            room = await client.join(room_id)
            await room.request("ping")
            assert (await room.next_event("two")).type == "two"
    finally:
        await asyncio.to_thread(_stop, proc)


def test_operator_errors_show_user_text_once_escaped() -> None:
    """An engine URL with brackets comes back verbatim, not with rich's escape backslash twice applied."""
    from click.testing import CliRunner

    from roomwire.cli.main import main

    result = CliRunner().invoke(main, ["versions", "--backend", "weird[x]://h"])
    assert result.exit_code == 1
    assert "'weird[x]://h'" in result.output
