"""`map_engine_errors()`: turn an engine library's exceptions into roomwire's BackendError tree.

Every backend adapter wraps its engine calls in it, so engine exception types never leave
`roomwire.backends` (callers catch `BackendUnavailableError` to retry later and `BackendError`
for everything else). The adapter names the engine's exception classes; this module imports
no engine library, so it works whichever optional extras are installed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from roomwire.errors import BackendError, BackendUnavailableError

__all__ = ["ExceptionTypes", "engine_error", "map_engine_errors"]

ExceptionTypes = tuple[type[BaseException], ...]


@contextmanager
def map_engine_errors(
    engine: str,
    *,
    unavailable: ExceptionTypes,
    failed: ExceptionTypes,
    refused: ExceptionTypes = (),
) -> Iterator[None]:
    """Re-raise engine errors as roomwire errors, chained (`raise ... from exc`).

    Args:
        engine: the engine's name, for messages ("redis").
        unavailable: transient failures (connection lost, timeout, engine loading or failing
            over) -> BackendUnavailableError: the caller may retry later. When it came from a
            write, the write may or may not have been applied.
        failed: every other engine error -> BackendError.
        refused: errors that look like `unavailable` but will not heal by retrying
            (authentication, permissions) -> BackendError; checked first.
    """
    try:
        yield
    except failed + unavailable + refused as exc:
        mapped = engine_error(exc, engine, unavailable=unavailable, failed=failed, refused=refused)
        assert mapped is not None  # every type caught here maps
        raise mapped from exc


def engine_error(
    exc: BaseException,
    engine: str,
    *,
    unavailable: ExceptionTypes,
    failed: ExceptionTypes,
    refused: ExceptionTypes = (),
) -> BackendError | None:
    """The roomwire error for an engine exception (see map_engine_errors), or None for other errors."""
    if isinstance(exc, refused):
        return BackendError(f"{engine} refused the operation: {exc}; check the credentials in the URL")
    if isinstance(exc, unavailable):
        return BackendUnavailableError(f"{engine} is unreachable or not ready ({exc}); retry later")
    if isinstance(exc, failed):
        return BackendError(f"{engine} failed: {exc}")
    return None
