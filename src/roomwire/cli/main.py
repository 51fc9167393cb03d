"""The `roomwire` command: run (development, embedded), serve (production processes), status,
deploy, versions and rollback (operators)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

import click
import uvicorn
import watchfiles
from prometheus_client import CollectorRegistry
from rich.console import Console
from rich.markup import escape
from rich.table import Table

import roomwire
from roomwire.app import App
from roomwire.backends import backend_from_url
from roomwire.backends.base import Backend
from roomwire.cli.hotswap import HotSwap
from roomwire.cli.loader import AppLoadError, load_app
from roomwire.cli.logformat import adopt_uvicorn_loggers, setup_logging
from roomwire.cli.secret_file import SecretFileError, load_or_create_secret, secret_path
from roomwire.cli.status import forget_worker, publish_worker_stats, read_status, render_status, status_json
from roomwire.errors import DeployError, RoomwireError, SetupError
from roomwire.gateway.metrics import METRICS_PATH, RoomwireCollector, new_registry, serve_metrics
from roomwire.gateway.server import bind_socket, quiet_access_logs, uvicorn_config
from roomwire.protocol.codec import CodecName
from roomwire.runtime import tracing
from roomwire.runtime.bundle import pack
from roomwire.runtime.worker import Worker

console = Console(stderr=True, highlight=False, soft_wrap=True)

# With several workers, a worker waits this long per room it already runs before claiming a new
# room, so the least loaded one usually wins and new rooms spread (see Worker.spread_s).
SPREAD_S = 0.002
OTEL_HELP = (
    "Trace lobby requests and room inputs with OpenTelemetry's global tracer provider "
    "(needs roomwire[otel]; configure the exporter with opentelemetry-instrument / OTEL_* variables)."
)
LOG_FORMAT_HELP = "json: one JSON object per line with room, player, version and error ref fields."
EMBEDDED = ("memory", "sqlite")


def _fail(message: str, code: int = 1) -> None:
    # Messages carry user text (paths, URLs, `pip install 'roomwire[redis]'`): never rich markup.
    console.print(f"[bold red]error:[/] {escape(message)}")
    sys.exit(code)


def _run_loop(main: asyncio.Future[None] | asyncio.Task[None] | object) -> None:
    try:
        import uvloop

        uvloop.run(main)  # type: ignore[arg-type]  # a coroutine
    except ImportError:
        asyncio.run(main)  # type: ignore[arg-type]  # a coroutine


def _setup_logging(level: str, fmt: str = "text") -> None:
    setup_logging(level, fmt)
    quiet_access_logs()
    logging.getLogger("watchfiles").setLevel(logging.WARNING)


def _setup_tracing(otel: bool) -> None:
    if not otel:
        return
    try:
        tracing.enable()  # OpenTelemetry's global provider: set up by opentelemetry-instrument or code
    except SetupError as exc:
        _fail(str(exc))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(roomwire.__version__, prog_name="roomwire")
def main() -> None:
    """roomwire: realtime multiplayer game backends."""


@main.command()
@click.argument("app_path", metavar="APP.py")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port for HTTP and WebSocket.")
@click.option("--data", default=None, help="SQLite file that keeps rooms across restarts (default: memory).")
@click.option(
    "--synchronous",
    type=click.Choice(["normal", "full"]),
    default="normal",
    show_default=True,
    help="With --data: full fsyncs every commit, so it also survives an OS crash or power loss.",
)
@click.option("--app", "app_name", default=None, help="Name of the App object when the file has several.")
@click.option("--reload/--no-reload", default=True, show_default=True, help="Reload on save, keeping rooms.")
@click.option(
    "--secret",
    envvar="ROOMWIRE_SECRET",
    default=None,
    help="Token secret (default: kept in DATA.secret with --data, else random per start).",
)
@click.option("--log-level", default="info", show_default=True)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help=LOG_FORMAT_HELP,
)
@click.option("--metrics", is_flag=True, help="Serve Prometheus metrics on GET /metrics of this server.")
@click.option("--otel", is_flag=True, help=OTEL_HELP)
def run(
    app_path: str,
    host: str,
    port: int,
    data: str | None,
    synchronous: str,
    app_name: str | None,
    reload: bool,
    secret: str | None,
    log_level: str,
    log_format: str,
    metrics: bool,
    otel: bool,
) -> None:
    """Run APP.py for development: one process, embedded backend, reload on save."""
    _setup_logging(log_level, log_format)
    _setup_tracing(otel)
    try:
        first = load_app(app_path, app_name)
    except AppLoadError as exc:
        _fail(str(exc))
        return
    backend = backend_from_url(
        f"sqlite:///{Path(data).resolve()}?synchronous={synchronous}" if data else "memory://"
    )
    loads = iter([first])

    def load() -> App:
        return next(loads, None) or load_app(app_path, app_name)

    if secret is not None and len(secret) < 16:
        _fail("--secret / ROOMWIRE_SECRET must be at least 16 characters")
    if secret is None and data and not first.has_secret:
        # Rooms in the file outlive this process: so must the tokens and rejoin seats of their
        # players, or a restart signs everybody out.
        try:
            secret, created = load_or_create_secret(Path(data).resolve())
        except SecretFileError as exc:
            _fail(str(exc))
            return
        verb = "created" if created else "using"
        console.print(escape(f"token secret: {verb} {secret_path(Path(data))} (keep it private)"))
    hot = HotSwap(backend, load, secret)
    hot.metrics = metrics
    hot.settings = first.settings
    sock = _bind(host, port)
    where = f"SQLite file {data}" if data else "memory"
    _run_loop(
        _serve(
            hot, sock, host, f"app {first.name!r}, embedded backend in {where}", app_path if reload else None
        )
    )


@main.command()
@click.argument("app_path", metavar="[APP.py]", required=False)
@click.option(
    "--backend",
    "backend_url",
    envvar="ROOMWIRE_BACKEND",
    required=True,
    help="Engine URL: redis://HOST:PORT/DB, sqlite:///PATH.",
)
@click.option("--role", type=click.Choice(["all", "gateway", "worker"]), default="all", show_default=True)
@click.option("--host", default="0.0.0.0", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--app", "app_name", default=None)
@click.option("--worker-id", default=None, help="Stable id of this worker (default: random).")
@click.option("--lease-ttl", default=2.0, show_default=True, type=float, help="Room lease TTL in seconds.")
@click.option(
    "--secret", envvar="ROOMWIRE_SECRET", default=None, help="Token secret shared by every process."
)
@click.option("--log-level", default="info", show_default=True)
@click.option(
    "--any-version",
    is_flag=True,
    help="Run rooms of every code version, not only this code's (rooms may then run other code).",
)
@click.option(
    "--deploy-key",
    envvar="ROOMWIRE_DEPLOY_KEY",
    default=None,
    help="Without APP.py: run only bundles signed with this key.",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help=LOG_FORMAT_HELP,
)
@click.option("--metrics", is_flag=True, help="Serve Prometheus metrics on GET /metrics of the main port.")
@click.option("--otel", is_flag=True, help=OTEL_HELP)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Serve Prometheus metrics on this port instead; a worker needs it for metrics.",
)
@click.option(
    "--metrics-host",
    default=None,
    help="Interface for --metrics-port (default: --host), e.g. one only Prometheus reaches.",
)
def serve(
    app_path: str | None,
    backend_url: str,
    role: str,
    host: str,
    port: int,
    app_name: str | None,
    worker_id: str | None,
    lease_ttl: float,
    secret: str | None,
    log_level: str,
    any_version: bool,
    deploy_key: str | None,
    log_format: str,
    metrics: bool,
    otel: bool,
    metrics_port: int | None,
    metrics_host: str | None,
) -> None:
    """Run APP.py as a production process: gateway, worker, or both, on a shared engine.

    Without APP.py, `--role worker` runs the deployed versions that rooms need, each in a child
    process of its own (`roomwire deploy` stores them).
    """
    _setup_logging(log_level, log_format)
    _setup_tracing(otel)
    if app_path is None:
        if metrics or metrics_port is not None:
            _fail("a generic worker (no APP.py) exports no metrics yet: run a worker with APP.py for them")
        _serve_generic(backend_url, role, worker_id, lease_ttl, secret, log_level, deploy_key)
        return
    try:
        app = load_app(app_path, app_name)
        backend = backend_from_url(backend_url)
    except (AppLoadError, RoomwireError) as exc:
        _fail(str(exc))
        return
    if secret and not app.has_secret:
        try:
            app.use_secret(secret)
        except ValueError as exc:
            _fail(f"--secret / ROOMWIRE_SECRET: {exc}")
    path = getattr(backend, "path", None)
    if not app.has_secret and backend.name == "sqlite" and isinstance(path, str):
        # One process with a data file: keep the secret with the rooms, as `roomwire run --data`.
        try:
            kept, _ = load_or_create_secret(Path(path).resolve())
        except SecretFileError as exc:
            _fail(str(exc))
            return
        app.use_secret(kept)
    if not app.has_secret and role != "all":
        _fail("several processes must sign seats with one secret: pass --secret or set ROOMWIRE_SECRET")
    if backend.name in EMBEDDED and role != "all":
        _fail(f"the {backend.name} backend lives in one process; use --role all, or an engine like redis://")
    spread_s = 0.0 if backend.name in EMBEDDED else SPREAD_S
    declared, app.version = app.version, _served_version(app_path, app_name, app.version)
    # One process on an embedded backend is the only worker there will ever be: pinning would
    # strand the rooms of the code it ran before a restart.
    pinned = not any_version and backend.name not in EMBEDDED
    where = metrics_host or host
    if metrics_port is not None:
        _check_port(where, metrics_port)  # a worker's too: its exporter would fail unseen, in a task
    if role == "worker":
        if metrics and metrics_port is None:
            _fail("a worker serves no HTTP: give it --metrics-port N for its metrics")
        metrics_at = (where, metrics_port)
        _run_loop(_work(app, backend, worker_id, lease_ttl, spread_s, declared, pinned, metrics_at))
        return
    if metrics and metrics_port is None:
        app.settings = dataclasses.replace(app.settings, metrics=True)
    gateway = app.build_gateway(backend, run_worker=role == "all", worker_id=worker_id, lease_ttl_s=lease_ttl)
    worker = gateway.worker
    background: list[Callable[[], Coroutine[Any, Any, None]]] = []
    if worker is not None:
        worker.spread_s = spread_s
        worker.also_runs = frozenset({declared})
        worker.pinned = pinned
        background.append(lambda: publish_worker_stats(worker, backend))
    if metrics_port is not None:
        background.append(lambda: _metrics_forever(gateway.metrics_registry, where, metrics_port))
    sock = _bind(host, port)
    _run_loop(_serve(gateway, sock, host, f"app {app.name!r} as {role} on {backend_url}", None, background))


@main.command()
@click.option(
    "--backend",
    "backend_url",
    envvar="ROOMWIRE_BACKEND",
    required=True,
    help="Engine URL: redis://HOST:PORT/DB.",
)
@click.option("--type", "room_type", default=None, help="Only rooms of this type.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of tables.")
def status(backend_url: str, room_type: str | None, as_json: bool) -> None:
    """Show rooms by state and worker, players and events per second, read from a shared engine."""
    try:
        backend = backend_from_url(backend_url)
    except RoomwireError as exc:
        _fail(str(exc))
        return
    if backend.name in EMBEDDED:
        _fail(f"the {backend.name} backend lives inside the serving process; status reads a shared engine")

    async def read() -> None:
        await backend.open()
        try:
            found = await read_status(backend, room_type)
        finally:
            await backend.aclose()
        if as_json:
            click.echo(status_json(found))
        else:
            # Piped (not a terminal), rich would assume 80 columns and squeeze the room ids.
            render_status(found, Console(highlight=False, width=None if sys.stdout.isatty() else 160))

    try:
        asyncio.run(read())
    except RoomwireError as exc:
        _fail(str(exc))


def _serve_generic(
    backend_url: str,
    role: str,
    worker_id: str | None,
    lease_ttl: float,
    secret: str | None,
    log_level: str,
    deploy_key: str | None,
) -> None:
    from roomwire.cli.deploy import check_key
    from roomwire.cli.generic import GenericWorker

    if role != "worker":
        _fail("serve needs APP.py, except with --role worker (which runs the deployed versions)")
    if not secret:
        _fail("workers sign seats with the gateways' secret: pass --secret or set ROOMWIRE_SECRET")
        return
    try:
        key = check_key(deploy_key)
    except DeployError as exc:
        _fail(str(exc))
        return
    backend = _engine(backend_url, "a generic worker")
    ident = worker_id or f"g-{os.urandom(4).hex()}"

    async def run() -> None:
        await backend.open()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        generic = GenericWorker(backend, backend_url, ident, secret, lease_ttl, key, log_level)
        console.print(
            f"roomwire {roomwire.__version__}: generic worker {ident} running deployed versions "
            f"on {escape(backend_url)}"
        )
        try:
            await generic.run(stop)
        finally:
            await backend.aclose()

    _run_loop(run())


def _served_version(app_path: str, app_name: str | None, declared: str) -> str:
    # Promise 5: a served process's code version is the content hash of its bundle, the same id
    # `roomwire deploy` gives these files, so its worker claims exactly the rooms pinned to them.
    try:
        return pack(app_path, app_name).version
    except (DeployError, OSError) as exc:
        console.print(
            f"[yellow]warning:[/] cannot bundle {escape(app_path)} ({escape(str(exc))}); "
            f"using the App's declared version {escape(repr(declared))}"
        )
        return declared


def _engine(backend_url: str, command: str) -> Backend:
    try:
        backend = backend_from_url(backend_url)
    except RoomwireError as exc:
        _fail(str(exc))
        raise AssertionError("unreachable") from exc
    if backend.name in EMBEDDED:
        _fail(f"the {backend.name} backend lives inside the serving process; {command} needs a shared engine")
    return backend


def _run_operator(backend: Backend, action: Callable[[], Coroutine[Any, Any, None]]) -> None:
    async def run() -> None:
        await backend.open()
        try:
            await action()
        finally:
            await backend.aclose()

    try:
        asyncio.run(run())
    except RoomwireError as exc:  # DeployError included: nothing was changed
        _fail(str(exc))


_BACKEND_OPTION = click.option(
    "--backend",
    "backend_url",
    envvar="ROOMWIRE_BACKEND",
    required=True,
    help="Engine URL: redis://HOST:PORT/DB.",
)
_KEY_OPTION = click.option(
    "--key",
    envvar="ROOMWIRE_DEPLOY_KEY",
    default=None,
    help="Deploy key: bundles are signed with it, and unsigned or tampered ones refused.",
)


@main.command()
@click.argument("app_dir", metavar="APP_DIR")
@_BACKEND_OPTION
@click.option("--app", "app_name", default=None, help="Name of the App object when the file has several.")
@_KEY_OPTION
def deploy(app_dir: str, backend_url: str, app_name: str | None, key: str | None) -> None:
    """Bundle APP_DIR (or APP.py), validate it, store it and make it the version new rooms get."""
    from roomwire.cli.deploy import check_key, publish, validate

    try:
        key = check_key(key)
        bundle = pack(app_dir, app_name)
    except DeployError as exc:
        _fail(str(exc))
        return
    backend = _engine(backend_url, "deploy")
    size = f"{len(bundle.files)} files, {bundle.size_bytes} bytes"
    console.print(f"validating version {bundle.version} ({size})")
    try:
        validated = validate(bundle)
    except DeployError as exc:
        _fail(str(exc))
        return

    async def act() -> None:
        switched = await publish(backend, bundle, validated, key)
        click.echo(f"version {switched.version} (current), {_replaced(switched.version, switched.replaced)}")

    _run_operator(backend, act)


def _replaced(version: str, old: str | None) -> str:
    if old is None:
        return "first deploy"
    return "already current" if old == version else f"replaced {old}"


@main.command()
@click.argument("version")
@_BACKEND_OPTION
@_KEY_OPTION
def rollback(version: str, backend_url: str, key: str | None) -> None:
    """Make a stored VERSION current again: new rooms get it; running rooms keep theirs."""
    from roomwire.cli.deploy import check_key
    from roomwire.cli.deploy import rollback as roll_back

    try:
        key = check_key(key)
    except DeployError as exc:
        _fail(str(exc))
        return
    backend = _engine(backend_url, "rollback")

    async def act() -> None:
        switched = await roll_back(backend, version, key)
        click.echo(f"version {switched.version} (current), {_replaced(switched.version, switched.replaced)}")

    _run_operator(backend, act)


@main.command()
@_BACKEND_OPTION
@click.option("--prune", is_flag=True, help="Remove the versions no room uses and that are not current.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of a table.")
def versions(backend_url: str, prune: bool, as_json: bool) -> None:
    """List deployed versions: which is current, and how many live rooms each one runs."""
    from roomwire.cli.deploy import age, version_rows
    from roomwire.cli.deploy import prune as prune_versions

    backend = _engine(backend_url, "versions")

    async def act() -> None:
        removed = await prune_versions(backend) if prune else []
        rows, undeployed = await version_rows(backend)
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "versions": [
                            {
                                "version": r.info.version,
                                "current": r.is_current,
                                "rooms": r.rooms,
                                "workers": r.workers,
                                "app": r.info.app,
                                "room_types": r.info.room_types,
                                "files": len(r.info.files),
                                "size_bytes": r.info.size_bytes,
                                "signed": r.info.signed,
                                "deployed_at": r.info.deployed_at,
                            }
                            for r in rows
                        ],
                        "undeployed_rooms": undeployed,
                        "pruned": removed,
                    }
                )
            )
            return
        table = Table("version", "", "rooms", "workers", "app", "room types", "files", "signed", "deployed")
        for r in rows:
            table.add_row(
                r.info.version,
                "current" if r.is_current else "",
                str(r.rooms),
                escape(", ".join(r.workers)),
                escape(r.info.app),
                escape(", ".join(r.info.room_types)),
                str(len(r.info.files)),
                "yes" if r.info.signed else "no",
                f"{age(r.info.deployed_at)} ago",
            )
        out = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
        out.print(table if rows else "no deployed versions; `roomwire deploy APP_DIR` stores one")
        for version, count in sorted(undeployed.items()):
            name = version or "(none: from before versions)"
            out.print(f"{count} live room(s) of version {escape(name)}, which is not stored")
        if prune:
            out.print(f"pruned {len(removed)} version(s): {', '.join(removed) or 'none'}")

    _run_operator(backend, act)


@main.command()
@_BACKEND_OPTION
@click.option("--app", "app_path", default=None, help="APP.py whose lobby routes the gateways serve.")
@click.option("--app-name", default=None, help="Name of the App object when the file has several.")
@click.option("--gateways", default=1, show_default=True, type=click.IntRange(0, 64))
@click.option("--host", default="0.0.0.0", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int, help="First gateway's port; then +1 each.")
@click.option("--min-workers", default=0, show_default=True, type=click.IntRange(0, 1024))
@click.option("--max-workers", default=8, show_default=True, type=click.IntRange(1, 1024))
@click.option(
    "--rooms-per-worker",
    default=200,
    show_default=True,
    type=click.IntRange(1),
    help="Awake rooms per worker.",
)
@click.option(
    "--scale-down-after",
    default=30.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Seconds the load must ask for fewer workers before one is stopped.",
)
@click.option("--lease-ttl", default=2.0, show_default=True, type=float, help="Room lease TTL in seconds.")
@click.option(
    "--secret", envvar="ROOMWIRE_SECRET", default=None, help="Token secret shared by every process."
)
@click.option(
    "--name", default=None, help="Prefix of process names: NAME-g1, NAME-w1 ... (default: up-<random>)."
)
@click.option("--log-level", default="info", show_default=True)
def up(
    backend_url: str,
    app_path: str | None,
    app_name: str | None,
    gateways: int,
    host: str,
    port: int,
    min_workers: int,
    max_workers: int,
    rooms_per_worker: int,
    scale_down_after: float,
    lease_ttl: float,
    secret: str | None,
    name: str | None,
    log_level: str,
) -> None:
    """Run gateways and generic workers on this machine: restart what dies, scale workers to the load.

    Workers run the deployed versions (`roomwire deploy`); gateways serve APP.py's lobby routes.
    """
    from roomwire.cli.scaling import ScalePolicy
    from roomwire.cli.up import Supervisor, UpConfig

    _setup_logging(log_level)
    if gateways and app_path is None:
        _fail("gateways serve the lobby routes of an app's files: pass --app APP.py (or --gateways 0)")
        return
    if app_path is not None and not Path(app_path).exists():
        _fail(f"--app {app_path}: no such file or folder")
        return
    if not secret or len(secret) < 16:
        _fail(
            "gateways and workers sign seats with one secret of 16+ characters: "
            "pass --secret or set ROOMWIRE_SECRET"
        )
        return
    try:
        policy = ScalePolicy(min_workers, max_workers, rooms_per_worker, scale_down_after)
    except ValueError as exc:
        _fail(f"--min-workers/--max-workers: {exc}")
        return
    backend = _engine(backend_url, "up")
    config = UpConfig(
        backend_url, secret, policy, app_path, app_name, gateways, host, port, lease_ttl, log_level
    )
    if name:
        config = dataclasses.replace(config, name=name)

    async def run() -> None:
        try:
            await backend.open()
        except RoomwireError as exc:
            _fail(f"cannot open the engine: {exc}")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        console.print(
            f"roomwire {roomwire.__version__}: up {config.name}: {gateways} gateway(s) from port {port}, "
            f"{min_workers}-{max_workers} workers on {escape(backend_url)}"
        )
        try:
            await Supervisor(config, backend).run(stop)
        finally:
            await backend.aclose()

    _run_loop(run())


@main.command()
@click.argument("app_path", metavar="APP.py")
@click.option("--url", default=None, help="A running server to use (default: start APP.py on a free port).")
@click.option("--room-type", default=None, help="Room type to play (default: the app's first).")
@click.option(
    "--message",
    "message",
    default=None,
    help="Message type the bots send (default: the first that needs no data, else the first).",
)
@click.option(
    "--data", default=None, help="JSON data of each message (default: made up from the handler's schema)."
)
@click.option("--rooms", default=4, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--players", default=4, show_default=True, type=click.IntRange(1, 1_000), help="Per room.")
@click.option(
    "--rate", default=5.0, show_default=True, type=click.FloatRange(0.1, 1000), help="Msg/s per bot."
)
@click.option("--duration", default=10.0, show_default=True, type=click.FloatRange(1, 3600), help="Seconds.")
@click.option(
    "--max-failed",
    default=1.0,
    show_default=True,
    type=click.FloatRange(0, 100),
    help="Exit 1 when more than this percentage of messages fails (always when none is acknowledged).",
)
@click.option("--codec", type=click.Choice(["json", "msgpack"]), default="json", show_default=True)
@click.option("--app", "app_name", default=None)
def bench(
    app_path: str,
    url: str | None,
    room_type: str | None,
    message: str | None,
    data: str | None,
    rooms: int,
    players: int,
    rate: float,
    duration: float,
    max_failed: float,
    codec: str,
    app_name: str | None,
) -> None:
    """Run bots against APP.py and print latency and throughput (ack round trip, events/s).

    Exits 1, saying why, when no message was acknowledged or more than --max-failed percent failed.
    """
    from roomwire.cli._bench_message import BenchMessageError, choose_message
    from roomwire.cli.bench import BenchPlan, render, run_bench, verdict

    try:
        app = load_app(app_path, app_name)
    except AppLoadError as exc:
        _fail(str(exc))
        return
    type_name = room_type or next(iter(app.room_types), None)
    if type_name not in app.room_types:
        _fail(f"no room type {type_name!r}; the app has: {', '.join(app.room_types) or 'none'}")
        return
    try:
        chosen_message = choose_message(app.room_types[type_name], message, data)
    except BenchMessageError as exc:
        _fail(str(exc))
        return
    if players > app.room_types[type_name].policy.max_players:
        _fail(f"--players {players} exceeds the room type's max_players")
        return
    server: subprocess.Popen[bytes] | None = None
    if url is None:
        port = _bind(host="127.0.0.1", port=0).getsockname()[1]  # type: ignore[attr-defined]
        cmd = [sys.executable, "-m", "roomwire.cli.main", "run", app_path, "--port", str(port), "--no-reload"]
        server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        if not _wait_for_port("127.0.0.1", port, 20):
            server.kill()
            _fail("the app did not start; run it with `roomwire run` to see why")
            return
    chosen: CodecName = "msgpack" if codec == "msgpack" else "json"
    plan = BenchPlan(
        url, type_name, chosen_message.type, chosen_message.data, rooms, players, rate, duration, chosen
    )
    try:
        result = asyncio.run(run_bench(plan, console))
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
    Console(highlight=False).print(render(plan, result))
    failure = verdict(result, max_failed)
    if failure is not None:
        hint = (
            " The data was made up from the handler's schema; pass a message your game accepts from"
            " every bot at any time with --message TYPE --data JSON."
            if chosen_message.derived and chosen_message.data is not None
            else ""
        )
        _fail(f"bench failed: {failure}.{hint}")


def _wait_for_port(host: str, port: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return True
        time.sleep(0.1)  # polling a port that is not up yet
    return False


def _bind(host: str, port: int) -> object:
    try:
        return bind_socket(host, port)
    except OSError as exc:
        _fail(f"cannot listen on {host}:{port} ({exc.strerror or exc}); is the port in use? try --port")
        raise AssertionError("unreachable") from exc


async def _serve(
    asgi: object,
    sock: object,
    host: str,
    what: str,
    watch: str | None,
    background: Sequence[Callable[[], Coroutine[Any, Any, None]]] = (),
) -> None:
    port = sock.getsockname()[1]  # type: ignore[attr-defined]  # a socket.socket
    # Objects alive now (modules, the app) live for the whole process: keeping them out of the
    # collector's full passes removed 44-71 ms pauses (bench/diagnose.py: p99.9 43.5 -> 4.1 ms).
    gc.collect()
    gc.freeze()
    server = uvicorn.Server(uvicorn_config(asgi, host, port, log_level="warning"))
    adopt_uvicorn_loggers()  # --log-format json: uvicorn's lines in JSON too
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    tasks: list[asyncio.Task[None]] = []

    async def announce() -> None:
        while not server.started:  # noqa: ASYNC110 - uvicorn offers no startup event to await
            await asyncio.sleep(0.05)
        # Started after the gateway's startup opened the backend.
        tasks.extend(asyncio.create_task(start()) for start in background)
        console.print(
            f"roomwire {roomwire.__version__}: serving {escape(what)} at [bold]http://{shown}:{port}[/]"
        )

    tasks.append(asyncio.create_task(announce()))
    if watch is not None and isinstance(asgi, HotSwap):
        tasks.append(asyncio.create_task(_reload_on_change(asgi, _watch_folder(watch))))
    try:
        await server.serve(sockets=[sock])  # type: ignore[list-item]  # a socket.socket
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _watch_folder(app_path: str) -> Path:
    path = Path(app_path).resolve()
    return path if path.is_dir() else path.parent


async def _reload_on_change(hot: HotSwap, folder: Path) -> None:
    async for changes in watchfiles.awatch(folder, watch_filter=watchfiles.PythonFilter()):
        names = ", ".join(sorted({Path(p).name for _, p in changes}))
        try:
            await hot.reload()
        except AppLoadError as exc:
            console.print(
                f"[bold red]reload failed[/] ({escape(names)}); still serving the previous code:\n"
                + escape(str(exc))
            )
            continue
        console.print(f"reloaded after a change in {escape(names)}; rooms kept their state")


def _check_port(host: str, port: int) -> None:
    """Fail before starting when a port is taken (the metrics server binds it later)."""
    _bind(host, port).close()  # type: ignore[attr-defined]  # a socket.socket


async def _metrics_forever(registry: CollectorRegistry, host: str, port: int) -> None:
    """Serve /metrics on its own port until cancelled."""
    server = await serve_metrics(registry, host, port)
    console.print(escape(f"metrics at http://{host}:{port}{METRICS_PATH}"))
    try:
        await asyncio.Event().wait()  # until the process stops (cancelled)
    finally:
        server.close()


async def _work(
    app: App,
    backend: Backend,
    worker_id: str | None,
    lease_ttl: float,
    spread_s: float,
    declared: str,
    pinned: bool,
    metrics_at: tuple[str, int | None] = ("127.0.0.1", None),
) -> None:
    for room_type in app.room_types.values():
        room_type.freeze()
    await backend.open()
    worker = Worker(
        app.room_types,
        backend,
        worker_id=worker_id,
        lease_ttl_s=lease_ttl,
        code_version=app.version,
        spread_s=spread_s,
        presence_ttl_s=app.settings.presence_ttl_s,
        pinned=pinned,
    )
    worker.also_runs = frozenset({declared})  # rooms from before content-hash versions
    await worker.start()
    publisher = asyncio.create_task(publish_worker_stats(worker, backend), name="roomwire-stats")
    exporter: asyncio.Task[None] | None = None
    host, metrics_port = metrics_at
    if metrics_port is not None:
        registry = new_registry(
            RoomwireCollector(worker.metrics, worker_getter=lambda: worker, role="worker")
        )
        exporter = asyncio.create_task(
            _metrics_forever(registry, host, metrics_port), name="roomwire-metrics"
        )
    console.print(
        escape(
            f"roomwire {roomwire.__version__}: worker {worker.id} running app {app.name!r} "
            f"version {app.version}"
        )
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for task in (publisher, exporter):
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    await worker.aclose()
    await forget_worker(worker, backend)
    await backend.aclose()


if __name__ == "__main__":  # python -m roomwire.cli.main
    with contextlib.suppress(KeyboardInterrupt):
        main(prog_name=os.path.basename(sys.argv[0]))
