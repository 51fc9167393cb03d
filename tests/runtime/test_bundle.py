"""App bundles: the pack rule, content ids, signing and tamper checks, requirements (runtime/bundle.py)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import msgspec
import pytest

from roomwire.errors import DeployError
from roomwire.runtime.bundle import (
    MAX_FILES,
    Bundle,
    SealedBundle,
    check_requirements,
    pack,
    seal,
    unseal,
)

KEY = "deploy-key-0123456789abcdef"
APP = 'from roomwire import App\nimport rules\napp = App("g")\napp.room("duel")\n'


def _app(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "app.py").write_text(APP)
    (folder / "rules.py").write_text("SPEED = 3\n")
    (folder / "game").mkdir(exist_ok=True)
    (folder / "game" / "__init__.py").write_text("")
    (folder / "game" / "maps.py").write_text("MAPS = []\n")
    return folder


def test_same_files_give_the_same_version_wherever_they_are(tmp_path: Path) -> None:
    a, b = _app(tmp_path / "a"), _app(tmp_path / "elsewhere" / "b")
    (b / "rules.py").touch()  # another mtime: not part of the identity
    first, second = pack(a), pack(b)
    assert first.version == second.version and len(first.version) == 12
    assert first.archive == second.archive
    assert first.digest.startswith(first.version)


def test_any_changed_byte_gives_another_version(tmp_path: Path) -> None:
    folder = _app(tmp_path / "a")
    before = pack(folder).version
    (folder / "game" / "maps.py").write_text("MAPS = [1]\n")
    assert pack(folder).version != before


def test_pack_takes_every_python_file_and_skips_caches_vcs_and_virtualenvs(tmp_path: Path) -> None:
    folder = _app(tmp_path / "a")
    for skipped in ("__pycache__/x.py", ".git/hook.py", ".venv/lib/m.py", "node_modules/n.py", "env2/e.py"):
        (folder / skipped).parent.mkdir(parents=True, exist_ok=True)
        (folder / skipped).write_text("X = 1\n")
    (folder / "env2" / "pyvenv.cfg").write_text("home = /usr\n")  # a virtualenv under any name
    (folder / "notes.txt").write_text("not code")
    (folder / "requirements.txt").write_text("msgspec\n")
    assert sorted(pack(folder).files) == [
        "app.py",
        "game/__init__.py",
        "game/maps.py",
        "requirements.txt",
        "rules.py",
    ]


def test_data_files_come_in_through_roomwire_include(tmp_path: Path) -> None:
    folder = _app(tmp_path / "a")
    (folder / "data").mkdir()
    (folder / "data" / "level1.json").write_text("{}")
    (folder / "data" / "level2.json").write_text("[]")
    (folder / "roomwire.include").write_text("# level data\ndata/*.json\n")
    bundle = pack(folder)
    assert {"data/level1.json", "data/level2.json", "roomwire.include"} <= set(bundle.files)
    (folder / "roomwire.include").write_text("data/*.yaml\n")
    with pytest.raises(DeployError, match=r"matches no file"):
        pack(folder)
    (folder / "roomwire.include").write_text("../secrets.txt\n")
    with pytest.raises(DeployError, match=r"inside the app's folder"):
        pack(folder)


def test_the_entry_may_be_a_file_and_names_the_app_attribute(tmp_path: Path) -> None:
    folder = _app(tmp_path / "a")
    (folder / "app.py").rename(folder / "server.py")
    bundle = pack(folder / "server.py", "app")
    assert (bundle.entry, bundle.attribute) == ("server.py", "app")
    with pytest.raises(DeployError, match=r"without an app.py"):
        pack(folder)
    with pytest.raises(DeployError, match=r"no such file"):
        pack(folder / "missing.py")


def test_a_folder_with_too_many_files_is_refused_not_truncated(tmp_path: Path) -> None:
    folder = _app(tmp_path / "a")
    for i in range(MAX_FILES):
        (folder / f"m{i}.py").write_text("")
    with pytest.raises(DeployError, match=r"folder of its own"):
        pack(folder)


def test_a_sealed_bundle_reads_back_unchanged_with_and_without_a_key(tmp_path: Path) -> None:
    bundle = pack(_app(tmp_path / "a"))
    assert unseal(seal(bundle, None), bundle.version, None) == bundle
    assert unseal(seal(bundle, KEY), bundle.version, KEY) == bundle
    assert unseal(seal(bundle, KEY), bundle.version, None) == bundle  # nothing to check it with


def test_a_bundle_changed_in_the_engine_is_refused_even_without_a_key(tmp_path: Path) -> None:
    bundle = pack(_app(tmp_path / "a"))
    files = dict(bundle.files)
    files["rules.py"] = b"import os; os.system('evil')\n"
    forged = Bundle.from_files(bundle.entry, bundle.attribute, files)
    raw = msgspec.msgpack.encode(SealedBundle(forged.archive))
    with pytest.raises(DeployError, match=r"was changed"):
        unseal(raw, bundle.version, None)


def test_with_a_key_unsigned_and_wrongly_signed_bundles_are_refused(tmp_path: Path) -> None:
    bundle = pack(_app(tmp_path / "a"))
    with pytest.raises(DeployError, match=r"unsigned"):
        unseal(seal(bundle, None), bundle.version, KEY)
    with pytest.raises(DeployError, match=r"signature does not match"):
        unseal(seal(bundle, "another-key-0123456789"), bundle.version, KEY)


def test_an_archive_with_a_path_leaving_its_folder_is_refused() -> None:
    for path in ("../evil.py", "/etc/passwd", "a/../../b.py", "a\\b.py", ""):
        with pytest.raises(DeployError, match=r"plain relative path"):
            Bundle.from_files("app.py", "", {"app.py": b"", path: b"x"})
    with pytest.raises(DeployError, match=r"not a roomwire app bundle"):
        Bundle.from_archive(b"\x00garbage")


def test_requirements_name_what_is_missing_or_incompatible() -> None:
    text = textwrap.dedent(
        """
        # comment
        msgspec>=0.1
        msgspec<0.0.1
        no-such-package-roomwire-test>=1.0
        only-on-other-os ; sys_platform == "nonexistent"
        -r other.txt
        not a requirement ((
        """
    )
    problems = check_requirements(text)
    assert any(p.startswith("incompatible: msgspec") for p in problems), problems
    assert any(p.startswith("missing: no-such-package-roomwire-test") for p in problems), problems
    assert any("pip option" in p for p in problems), problems
    assert any("not a requirement" in p for p in problems), problems
    assert not any("only-on-other-os" in p for p in problems)
    assert len(problems) == 4
    assert check_requirements("msgspec>=0.1\n") == []
