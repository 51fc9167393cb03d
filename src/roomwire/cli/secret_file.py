"""The token secret of `roomwire run --data`: generated once, kept next to the data file.

Rooms in a data file outlive the process; tokens and rejoin seats must too, or every player is
refused after a restart. The secret lives in `<data file>.secret`, created atomically (written
to a temporary file, then hard-linked into place, so a crash leaves no empty or half-written
secret and two processes starting at once agree on one) with mode 0600. Like ssh with a private
key, a secret file that its group or others can read or write is refused, not used.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

SUFFIX = ".secret"
MIN_CHARS = 32


class SecretFileError(Exception):
    """The secret file cannot be used; the message says what to fix."""


def secret_path(data_file: Path) -> Path:
    """Where the secret of `data_file` is kept."""
    return data_file.with_name(data_file.name + SUFFIX)


def load_or_create_secret(data_file: Path) -> tuple[str, bool]:
    """The secret kept for `data_file`, and whether it was created just now.

    Raises:
        SecretFileError: the file is readable or writable by group or others, not a regular
            file, too short, or cannot be read or written.
    """
    path = secret_path(data_file)
    try:
        return _read(path), False
    except FileNotFoundError:
        pass
    try:
        created = _create(path)
    except OSError as exc:
        raise SecretFileError(f"cannot create the token secret file {path}: {exc.strerror or exc}") from exc
    try:
        return _read(path), created
    except FileNotFoundError as exc:
        raise SecretFileError(f"the token secret file {path} vanished while it was created") from exc


def _read(path: Path) -> str:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise SecretFileError(f"cannot read the token secret file {path}: {exc.strerror or exc}") from exc
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise SecretFileError(f"the token secret file {path} is not a regular file")
        if info.st_mode & 0o077:
            raise SecretFileError(
                f"the token secret file {path} is accessible to others (mode {stat.filemode(info.st_mode)}); "
                f"run `chmod 600 {path}`, or delete it to make a new one (this signs every player out)"
            )
        text = f.read().decode("utf-8", "replace").strip()
    if len(text.encode()) < MIN_CHARS:
        raise SecretFileError(
            f"the token secret file {path} holds {len(text.encode())} bytes, fewer than {MIN_CHARS}; "
            "delete it to make a new one (this signs every player out)"
        )
    return text


def _create(path: Path) -> bool:
    """Write a new secret at `path` unless one appeared meanwhile; True if this call made it."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_urlsafe(48).encode() + b"\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # atomic, and never replaces a secret another process just made
        except FileExistsError:
            return False
        _fsync_dir(path.parent)
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _fsync_dir(folder: Path) -> None:
    # The new name must survive a power loss as surely as the rooms it protects.
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
