"""Import an unpacked bundle in a throwaway interpreter and report what it declares (`roomwire deploy`).

Run as `python -m roomwire.cli.validate APP.py [--app NAME]` from the bundle's folder. Prints one
JSON line `{"app": name, "room_types": [...]}` and exits 0, or prints why the bundle is refused
on stderr and exits 2. It imports the user's code, so it runs in its own process: whatever the
import does (or breaks) ends with it.
"""

from __future__ import annotations

import argparse
import json
import sys

from roomwire.cli.loader import AppLoadError, load_app
from roomwire.errors import RoomwireError
from roomwire.runtime.bundle import REQUIREMENTS, check_requirements

REFUSED = 2


def main(argv: list[str] | None = None) -> int:
    """Validate; the exit status says whether the bundle may be deployed."""
    parser = argparse.ArgumentParser(prog="python -m roomwire.cli.validate")
    parser.add_argument("entry")
    parser.add_argument("--app", default=None)
    args = parser.parse_args(argv)
    try:
        with open(REQUIREMENTS, encoding="utf-8") as file:
            problems = check_requirements(file.read())
    except FileNotFoundError:
        problems = []
    if problems:
        print(
            "requirements.txt is not satisfied by this environment:\n  " + "\n  ".join(problems),
            file=sys.stderr,
        )
        return REFUSED
    try:
        app = load_app(args.entry, args.app)
    except AppLoadError as exc:  # import error, bad policy (SetupError at declaration), no App
        print(str(exc), file=sys.stderr)
        return REFUSED
    if not app.room_types:
        print(f"app {app.name!r} declares no room types; add one with app.room(...)", file=sys.stderr)
        return REFUSED
    try:
        for room_type in app.room_types.values():
            room_type.freeze()
    except RoomwireError as exc:
        print(f"app {app.name!r}: {exc}", file=sys.stderr)
        return REFUSED
    print(json.dumps({"app": app.name, "room_types": sorted(app.room_types)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
