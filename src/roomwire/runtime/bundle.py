"""App bundles: pack an app's folder into one canonical archive, hash, sign, verify, check requirements.

Pure: it reads the app's files when packing and the installed distributions' metadata when
checking requirements; it writes nothing, talks to no engine and starts no process (storing is
runtime/versions.py, validating by import is cli/deploy.py).

The pack rule (docs/deployment.md, "Deploys"). The entry is `APP_DIR/app.py`, or the `.py` file
named; its folder is the bundle root. A bundle holds:

* every `*.py` file under the root, at any depth (so whatever the app imports from its folder
  is in, without guessing imports, and a module imported lazily is not forgotten);
* `requirements.txt` next to the entry, when present (recorded, and checked where it is loaded);
* data files: the files matching the glob patterns listed one per line in `roomwire.include`
  next to the entry (and that file itself); a pattern that matches nothing is refused;

skipping folders that are hidden (`.git`, `.venv`, ...), `__pycache__`, `node_modules`,
`site-packages`, and any folder holding a `pyvenv.cfg` (a virtualenv under another name).
At most MAX_FILES files and MAX_BUNDLE_BYTES bytes: a bigger folder is refused (a deploy of a
home directory by mistake), not truncated.

Identity: the archive is the msgpack encoding of (format, entry, app attribute, files sorted by
path), so the same files give the same bytes on any machine; its sha256 is the digest and its
first 12 hex digits the version id. File modes and times are not part of it.

Signing: with a deploy key, the stored bundle carries HMAC-SHA256(key, archive). `unseal`
refuses a bundle whose archive no longer hashes to its version id (changed in the engine), and,
when a key is configured, one that is unsigned or whose signature does not match.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.metadata
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import msgspec
from packaging.requirements import InvalidRequirement, Requirement

from roomwire.errors import DeployError

FORMAT = 1
ENTRY_DEFAULT = "app.py"
REQUIREMENTS = "requirements.txt"
INCLUDE = "roomwire.include"
MAX_FILES = 1000
MAX_BUNDLE_BYTES = 16 * 1024 * 1024  # far below Redis' 512 MB string limit; a bundle is code
VERSION_CHARS = 12
_SKIPPED_DIRS = frozenset({"__pycache__", "node_modules", "site-packages"})


class _Archive(msgspec.Struct, array_like=True, frozen=True):
    """The canonical archive: what the version id is the hash of."""

    format: int
    entry: str
    attribute: str
    files: list[tuple[str, bytes]]


class SealedBundle(msgspec.Struct, frozen=True):
    """A bundle as stored in the engine: the archive and its signature ("" when unsigned)."""

    archive: bytes
    signature: str = ""


@dataclass(frozen=True)
class Bundle:
    """One version of an app: its files, entry module and App attribute, and their canonical archive."""

    entry: str  # the app file, relative to the root ("app.py")
    attribute: str  # the App's attribute name in the entry ("" means: `app`, or the only App)
    files: Mapping[str, bytes]  # relative posix path -> content
    archive: bytes
    digest: str  # sha256 of the archive, hex

    @property
    def version(self) -> str:
        """The version id: the first 12 hex digits of the archive's sha256."""
        return self.digest[:VERSION_CHARS]

    @property
    def requirements(self) -> str:
        """The text of requirements.txt next to the entry ("" when there is none)."""
        raw = self.files.get(_sibling(self.entry, REQUIREMENTS), b"")
        return raw.decode("utf-8", errors="replace")

    @property
    def size_bytes(self) -> int:
        """Size of the archive."""
        return len(self.archive)

    @classmethod
    def from_files(cls, entry: str, attribute: str, files: Mapping[str, bytes]) -> Bundle:
        """Build the canonical archive of these files (paths are checked like `from_archive`)."""
        for path in files:
            _check_path(path)
        if entry not in files:
            raise DeployError(f"the bundle's entry {entry!r} is not among its files")
        archive = msgspec.msgpack.encode(_Archive(FORMAT, entry, attribute, sorted(files.items())))
        if len(archive) > MAX_BUNDLE_BYTES:
            raise DeployError(
                f"the bundle is {len(archive) // 1024} KiB, over the {MAX_BUNDLE_BYTES // 1024 // 1024} MiB "
                "limit: keep large assets out of the app's folder (or out of roomwire.include)"
            )
        digest = hashlib.sha256(archive).hexdigest()
        return cls(entry, attribute, dict(sorted(files.items())), archive, digest)

    @classmethod
    def from_archive(cls, archive: bytes) -> Bundle:
        """Read a canonical archive back; DeployError when it is not one."""
        try:
            decoded = msgspec.msgpack.decode(archive, type=_Archive)
        except msgspec.DecodeError as exc:
            raise DeployError(f"not a roomwire app bundle: {exc}") from exc
        if decoded.format != FORMAT:
            raise DeployError(f"bundle format {decoded.format} is unknown; this roomwire reads {FORMAT}")
        bundle = cls.from_files(decoded.entry, decoded.attribute, dict(decoded.files))
        if bundle.archive != archive:  # e.g. files out of order: not what `pack` writes
            raise DeployError("not a canonical roomwire app bundle")
        return bundle


def pack(path: str | os.PathLike[str], attribute: str | None = None) -> Bundle:
    """Pack the app at `path` (APP_DIR with an app.py, or an APP.py) by the rule in the module docstring.

    Raises DeployError when the path is not an app, or the folder breaks a limit.
    """
    given = Path(path)
    if not given.exists():
        raise DeployError(f"no such file or folder: {path}")
    if given.is_dir():
        root, entry = given.resolve(), ENTRY_DEFAULT
        if not (root / entry).is_file():
            raise DeployError(f"{path} is a folder without an app.py; name the app file instead")
    else:
        if given.suffix != ".py":
            raise DeployError(f"{path} is not a Python file")
        root, entry = given.resolve().parent, given.name
    names = set(_python_files(root))
    for name in (REQUIREMENTS, INCLUDE):
        if (root / name).is_file():
            names.add(name)
    if INCLUDE in names:
        names.update(_included(root, (root / INCLUDE).read_text("utf-8")))
    if len(names) > MAX_FILES:
        raise DeployError(
            f"{root} holds {len(names)} files to bundle, over the limit of {MAX_FILES}: "
            "put the app in a folder of its own"
        )
    files, total = {}, 0
    for name in sorted(names):
        data = (root / name).read_bytes()
        total += len(data)
        if total > MAX_BUNDLE_BYTES:
            raise DeployError(
                f"{root} holds over {MAX_BUNDLE_BYTES // 1024 // 1024} MiB of files to bundle: "
                "put the app in a folder of its own and keep large assets out of it"
            )
        files[name] = data
    return Bundle.from_files(entry, attribute or "", files)


def _python_files(root: Path) -> Iterator[str]:
    for folder, dirs, names in os.walk(root):
        here = Path(folder)
        # Pruned in place so os.walk does not descend: caches, VCS data and virtualenvs are not code.
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(".") and d not in _SKIPPED_DIRS and not (here / d / "pyvenv.cfg").exists()
        )
        for name in names:
            if name.endswith(".py") and not name.startswith("."):
                yield (here / name).relative_to(root).as_posix()


def _included(root: Path, text: str) -> set[str]:
    found: set[str] = set()
    for number, line in enumerate(text.splitlines(), 1):
        pattern = line.split("#", 1)[0].strip()
        if not pattern:
            continue
        if pattern.startswith("/") or ".." in PurePosixPath(pattern).parts:
            raise DeployError(f"{INCLUDE} line {number}: {pattern!r} must stay inside the app's folder")
        matches = [p for p in root.glob(pattern) if p.is_file()]
        if not matches:
            raise DeployError(f"{INCLUDE} line {number}: {pattern!r} matches no file")
        for match in matches:
            resolved = match.resolve()
            if not resolved.is_relative_to(root):
                raise DeployError(f"{INCLUDE} line {number}: {match} is outside the app's folder")
            found.add(match.relative_to(root).as_posix())
    return found


def _check_path(path: str) -> None:
    # The files are written back out to a folder when a bundle is loaded: no escaping it.
    pure = PurePosixPath(path)
    if not path or "\\" in path or pure.is_absolute() or any(p in ("", ".", "..") for p in path.split("/")):
        raise DeployError(f"bundle path {path!r} is not a plain relative path")


def _sibling(entry: str, name: str) -> str:
    parent = PurePosixPath(entry).parent
    return name if str(parent) == "." else f"{parent}/{name}"


# --- signing ----------------------------------------------------------------------------------


def sign(archive: bytes, key: str) -> str:
    """HMAC-SHA256 of the archive under the deploy key, hex."""
    return hmac.new(key.encode(), archive, hashlib.sha256).hexdigest()


def seal(bundle: Bundle, key: str | None) -> bytes:
    """The stored form of a bundle, signed when a key is given."""
    return msgspec.msgpack.encode(SealedBundle(bundle.archive, sign(bundle.archive, key) if key else ""))


def unseal(raw: bytes, version: str, key: str | None) -> Bundle:
    """Verify a stored bundle and read it back.

    Raises DeployError when it is not a bundle, when its content no longer hashes to `version`
    (changed in the engine), or, with a key, when it is unsigned or its signature does not match
    (signed with another key, or changed by someone without the key).
    """
    try:
        sealed = msgspec.msgpack.decode(raw, type=SealedBundle)
    except msgspec.DecodeError as exc:
        raise DeployError(f"version {version}: the stored bundle is unreadable ({exc})") from exc
    actual = hashlib.sha256(sealed.archive).hexdigest()[:VERSION_CHARS]
    if actual != version:
        raise DeployError(
            f"version {version}: the stored bundle was changed (its content hashes to {actual}); "
            "refusing it: deploy the app again"
        )
    if key is not None:
        if not sealed.signature:
            raise DeployError(
                f"version {version} is unsigned and ROOMWIRE_DEPLOY_KEY is set: deploy it again with the key"
            )
        if not hmac.compare_digest(sealed.signature, sign(sealed.archive, key)):
            raise DeployError(
                f"version {version}: the signature does not match ROOMWIRE_DEPLOY_KEY "
                "(signed with another key, or tampered with)"
            )
    return Bundle.from_archive(sealed.archive)


# --- requirements -----------------------------------------------------------------------------


def check_requirements(text: str) -> list[str]:
    """What the running environment lacks for requirements.txt `text`: one line per problem.

    Each requirement line is checked against the installed distributions (importlib.metadata):
    missing, or installed at a version outside the specifier. Lines whose environment marker
    does not apply here are skipped; pip options (`-r`, `--index-url`, ...) cannot be checked
    and are reported, so a requirement is never silently unchecked.
    """
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-"):
            problems.append(f"line {number}: pip option {line!r} cannot be checked; list packages only")
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement as exc:
            problems.append(f"line {number}: not a requirement: {line!r} ({exc})")
            continue
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        try:
            installed = importlib.metadata.version(requirement.name)
        except importlib.metadata.PackageNotFoundError:
            problems.append(f"missing: {requirement.name} (wanted {requirement})")
            continue
        if requirement.specifier and not requirement.specifier.contains(installed, prereleases=True):
            problems.append(f"incompatible: {requirement.name} {installed} installed, wanted {requirement}")
    return problems
