"""Load the user's App from a Python file, with errors that say what to fix."""

from __future__ import annotations

import importlib.util
import sys
import traceback
from pathlib import Path

from roomwire.app import App


class AppLoadError(Exception):
    """The app file cannot be loaded; the message says why and what to do."""


def load_app(path: str, attribute: str | None = None) -> App:
    """Import `path` as a fresh module and return its App (the `app` attribute, or the only App)."""
    file = Path(path).resolve()
    if not file.exists():
        raise AppLoadError(f"no such file: {path}")
    if file.is_dir():
        candidate = file / "app.py"
        if not candidate.exists():
            raise AppLoadError(f"{path} is a directory without an app.py; name the file to run")
        file = candidate
    if file.suffix != ".py":
        raise AppLoadError(f"{path} is not a Python file")
    # The module is named after its file so timer callbacks stored as "module:function" resolve again.
    module_name = file.stem
    folder = str(file.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    for name in [n for n in sys.modules if n == module_name]:
        del sys.modules[name]
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        raise AppLoadError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's code failed to import: show where, keep the CLI alive
        del sys.modules[module_name]
        detail = "".join(traceback.format_exception(exc)[-6:])
        raise AppLoadError(f"importing {path} failed:\n{detail}") from exc
    if attribute:
        app = getattr(module, attribute, None)
        if not isinstance(app, App):
            raise AppLoadError(f"{path} has no App named {attribute!r}")
        return app
    app = getattr(module, "app", None)
    if isinstance(app, App):
        return app
    apps = [value for value in vars(module).values() if isinstance(value, App)]
    if len(apps) == 1:
        return apps[0]
    if not apps:
        raise AppLoadError(f'{path} defines no roomwire App; add `app = App("name")`')
    raise AppLoadError(f"{path} defines several Apps; choose one with --app NAME")
