"""Deployed versions in the engine: bundles, their manifests and the current pointer (kv entries).

Stored through the Backend's key-value interface, so every engine that keeps kv keeps versions:

    rw:deploy:bundle:<version>    the sealed bundle (runtime/bundle.py: archive + signature)
    rw:deploy:version:<version>   its manifest (JSON VersionInfo), written after the bundle, so a
                                  listed version always has its bundle
    rw:deploy:current             the version new rooms get

None of them expires. Setting the pointer is one write, so a deploy or a rollback switches new
rooms at once (lobbies cache it for at most CURRENT_CACHE_S); two deploys at the same moment:
the last write wins. Nothing here ever changes a room's recorded version.
"""

from __future__ import annotations

import time

import msgspec

from roomwire.backends.base import Backend
from roomwire.errors import DeployError
from roomwire.runtime.bundle import Bundle, seal, unseal

CURRENT_KEY = "rw:deploy:current"
BUNDLE_PREFIX = "rw:deploy:bundle:"
VERSION_PREFIX = "rw:deploy:version:"
# A lobby re-reads the current pointer at most this often: new rooms may get the replaced version
# for up to this long after a deploy or rollback (docs/deployment.md, "Deploys").
CURRENT_CACHE_S = 1.0


class VersionInfo(msgspec.Struct, frozen=True):
    """What a deploy recorded about one version (shown by `roomwire versions`)."""

    version: str
    digest: str  # sha256 of the archive
    app: str  # the App's name
    entry: str
    attribute: str
    files: list[str]
    size_bytes: int
    room_types: list[str]
    requirements: list[str]
    signed: bool
    deployed_at: float


def version_info(bundle: Bundle, app: str, room_types: list[str], *, signed: bool) -> VersionInfo:
    """The manifest of a bundle that passed validation."""
    requirements = [
        line.strip() for line in bundle.requirements.splitlines() if line.strip() and not line.startswith("#")
    ]
    return VersionInfo(
        version=bundle.version,
        digest=bundle.digest,
        app=app,
        entry=bundle.entry,
        attribute=bundle.attribute,
        files=list(bundle.files),
        size_bytes=bundle.size_bytes,
        room_types=sorted(room_types),
        requirements=requirements,
        signed=signed,
        deployed_at=time.time(),
    )


async def store_version(backend: Backend, bundle: Bundle, info: VersionInfo, key: str | None) -> None:
    """Store the bundle, then its manifest (storing the same version again rewrites both)."""
    await backend.kv_set(BUNDLE_PREFIX + bundle.version, seal(bundle, key))
    await backend.kv_set(VERSION_PREFIX + bundle.version, msgspec.json.encode(info))


async def get_version(backend: Backend, version: str) -> VersionInfo | None:
    """The manifest of a stored version, or None."""
    raw = await backend.kv_get(VERSION_PREFIX + version)
    return None if raw is None else _decode_info(version, raw)


async def list_versions(backend: Backend) -> list[VersionInfo]:
    """Every stored version, oldest deploy first."""
    found = await backend.kv_scan(VERSION_PREFIX)
    infos = [_decode_info(key[len(VERSION_PREFIX) :], raw) for key, raw in found.items()]
    return sorted(infos, key=lambda info: (info.deployed_at, info.version))


async def resolve_version(backend: Backend, given: str) -> VersionInfo:
    """The stored version named by an id or a unique prefix of one (at least 4 characters)."""
    exact = await get_version(backend, given)
    if exact is not None:
        return exact
    if len(given) < 4:
        raise DeployError(f"no version {given!r}; give at least 4 characters of its id")
    matches = [info for info in await list_versions(backend) if info.version.startswith(given)]
    if not matches:
        raise DeployError(f"no stored version {given!r}; `roomwire versions` lists them")
    if len(matches) > 1:
        raise DeployError(f"{given!r} names {len(matches)} versions; give more of the id")
    return matches[0]


async def load_bundle(backend: Backend, version: str, key: str | None) -> Bundle:
    """A stored version's bundle, verified (runtime/bundle.py `unseal`); DeployError if absent or refused."""
    raw = await backend.kv_get(BUNDLE_PREFIX + version)
    if raw is None:
        raise DeployError(
            f"version {version} has no stored bundle: deploy its files with `roomwire deploy`, "
            "or run a worker started with them (`roomwire serve APP.py --role worker`)"
        )
    return unseal(raw, version, key)


async def delete_version(backend: Backend, version: str) -> None:
    """Remove a version's manifest, then its bundle (the caller checks nothing uses it)."""
    await backend.kv_delete(VERSION_PREFIX + version)
    await backend.kv_delete(BUNDLE_PREFIX + version)


async def current_version(backend: Backend) -> str | None:
    """The version new rooms get, or None before the first deploy."""
    raw = await backend.kv_get(CURRENT_KEY)
    return None if raw is None else raw.decode()


async def set_current(backend: Backend, version: str) -> None:
    """Make `version` the one new rooms get (the caller has checked it is stored and valid)."""
    await backend.kv_set(CURRENT_KEY, version.encode())


class CurrentVersion:
    """The current pointer as a lobby reads it: cached for CURRENT_CACHE_S, so creating rooms
    costs at most one kv read per second per gateway."""

    def __init__(self, backend: Backend, cache_s: float = CURRENT_CACHE_S) -> None:
        self._backend = backend
        self._cache_s = cache_s
        self._value: str | None = None
        self._read_at = float("-inf")

    async def get(self) -> str | None:
        """The current deployed version (at most cache_s old), or None when nothing is deployed."""
        now = time.monotonic()
        if now - self._read_at >= self._cache_s:
            self._value = await current_version(self._backend)
            self._read_at = now
        return self._value


def _decode_info(version: str, raw: bytes) -> VersionInfo:
    try:
        return msgspec.json.decode(raw, type=VersionInfo)
    except msgspec.DecodeError as exc:
        raise DeployError(f"version {version}: unreadable manifest ({exc}); deploy it again") from exc
