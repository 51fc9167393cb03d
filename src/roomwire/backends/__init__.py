"""Backends: the only code that talks to an engine. `open_backend(url)` picks one by URL scheme.

    memory://                      embedded, in process memory (the default)
    sqlite:///path/to/file.db      embedded, durable in a SQLite file (WAL); ?synchronous=full
                                   also survives an OS crash (one fsync per commit)
    redis://host:port/db           Redis (roomwire[redis])

A `namespace` query parameter (or argument) prefixes every key, so tests and apps can share an engine.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from roomwire.backends.base import Backend
from roomwire.errors import SetupError

__all__ = ["Backend", "backend_from_url"]


def backend_from_url(url: str, *, namespace: str | None = None) -> Backend:
    """Build (not yet open) the backend a URL names; raises SetupError for an unknown scheme."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    ns = namespace or (query.get("namespace") or ["rw"])[0]
    if parts.scheme == "memory":
        from roomwire.backends.embedded import EmbeddedBackend

        return EmbeddedBackend(path=None, namespace=ns)
    if parts.scheme == "sqlite":
        from roomwire.backends._sqlite_store import parse_synchronous
        from roomwire.backends.embedded import EmbeddedBackend

        path = parts.path if not parts.netloc else parts.netloc + parts.path
        if not path:
            raise SetupError(f"sqlite URL {url!r} has no file path; use sqlite:///path/to/file.db")
        synchronous = parse_synchronous((query.get("synchronous") or ["normal"])[0])
        return EmbeddedBackend(path=path, namespace=ns, synchronous=synchronous)
    if parts.scheme in ("redis", "rediss"):
        try:
            from roomwire.backends.redis import RedisBackend
        except ImportError as exc:  # the redis extra is optional
            raise SetupError("the Redis backend needs `pip install 'roomwire[redis]'`") from exc
        return RedisBackend(url, namespace=ns)  # it strips its own query parameters
    raise SetupError(f"unknown backend URL {url!r}; use memory://, sqlite:///PATH or redis://HOST:PORT/DB")
