"""The `roomwire` command: run (development, embedded), serve (production processes), status."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from pathlib import Path

import click
import uvicorn
import watchfiles
from rich.console import Console

import roomwire
from roomwire.app import App
from roomwire.backends import backend_from_url
from roomwire.backends.base import Backend
from roomwire.cli.hotswap import HotSwap
from roomwire.cli.loader import AppLoadError, load_app
from roomwire.errors import RoomwireError
from roomwire.gateway.server import bind_socket, quiet_access_logs, uvicorn_config
from roomwire.runtime.worker import Worker

console = Console(stderr=True, highlight=False, soft_wrap=True)


def _fail(message: str, code: int = 1) -> None:
    console.print(f"[bold red]error:[/] {message}")
    sys.exit(code)


def _run_loop(main: asyncio.Future[None] | asyncio.Task[None] | object) -> None:
    try:
        import uvloop

        uvloop.run(main)  # type: ignore[arg-type]  # a coroutine
    except ImportError:
        asyncio.run(main)  # type: ignore[arg-type]  # a coroutine


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_access_logs()
    logging.getLogger("watchfiles").setLevel(logging.WARNING)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(roomwire.__version__, prog_name="roomwire")
def main() -> None:
    """roomwire: realtime multiplayer game backends."""


@main.command()
@click.argument("app_path", metavar="APP.py")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port for HTTP and WebSocket.")
@click.option("--data", default=None, help="SQLite file that keeps rooms across restarts (default: memory).")
@click.option("--app", "app_name", default=None, help="Name of the App object when the file has several.")
@click.option("--reload/--no-reload", default=True, show_default=True, help="Reload on save, keeping rooms.")
@click.option("--secret", envvar="ROOMWIRE_SECRET", default=None, help="Token secret (default: random).")
@click.option("--log-level", default="info", show_default=True)
def run(
    app_path: str,
    host: str,
    port: int,
    data: str | None,
    app_name: str | None,
    reload: bool,
    secret: str | None,
    log_level: str,
) -> None:
    """Run APP.py for development: one process, embedded backend, reload on save."""
    _setup_logging(log_level)
    try:
        first = load_app(app_path, app_name)
    except AppLoadError as exc:
        _fail(str(exc))
        return
    backend = backend_from_url(f"sqlite:///{Path(data).resolve()}" if data else "memory://")
    loads = iter([first])

    def load() -> App:
        return next(loads, None) or load_app(app_path, app_name)

    hot = HotSwap(backend, load, secret)
    sock = _bind(host, port)
    where = f"SQLite file {data}" if data else "memory"
    _run_loop(
        _serve(
            hot, sock, host, f"app {first.name!r}, embedded backend in {where}", app_path if reload else None
        )
    )


@main.command()
@click.argument("app_path", metavar="APP.py")
@click.option(
    "--backend", "backend_url", required=True, help="Engine URL: redis://HOST:PORT/DB, sqlite:///PATH."
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
def serve(
    app_path: str,
    backend_url: str,
    role: str,
    host: str,
    port: int,
    app_name: str | None,
    worker_id: str | None,
    lease_ttl: float,
    secret: str | None,
    log_level: str,
) -> None:
    """Run APP.py as a production process: gateway, worker, or both, on a shared engine."""
    _setup_logging(log_level)
    try:
        app = load_app(app_path, app_name)
        backend = backend_from_url(backend_url)
    except (AppLoadError, RoomwireError) as exc:
        _fail(str(exc))
        return
    if secret and not app.has_secret:
        app.use_secret(secret)
    if not app.has_secret and role != "all":
        _fail("several processes must sign seats with one secret: pass --secret or set ROOMWIRE_SECRET")
    if backend.name in ("memory", "sqlite") and role != "all":
        _fail(f"the {backend.name} backend lives in one process; use --role all, or an engine like redis://")
    if role == "worker":
        _run_loop(_work(app, backend, worker_id, lease_ttl))
        return
    gateway = app.build_gateway(backend, run_worker=role == "all", worker_id=worker_id, lease_ttl_s=lease_ttl)
    sock = _bind(host, port)
    _run_loop(_serve(gateway, sock, host, f"app {app.name!r} as {role} on {backend_url}", None))


def _bind(host: str, port: int) -> object:
    try:
        return bind_socket(host, port)
    except OSError as exc:
        _fail(f"cannot listen on {host}:{port} ({exc.strerror or exc}); is the port in use? try --port")
        raise AssertionError("unreachable") from exc


async def _serve(asgi: object, sock: object, host: str, what: str, watch: str | None) -> None:
    port = sock.getsockname()[1]  # type: ignore[attr-defined]  # a socket.socket
    server = uvicorn.Server(uvicorn_config(asgi, host, port, log_level="warning"))
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    tasks: list[asyncio.Task[None]] = []

    async def announce() -> None:
        while not server.started:  # noqa: ASYNC110 - uvicorn offers no startup event to await
            await asyncio.sleep(0.05)
        console.print(f"roomwire {roomwire.__version__}: serving {what} at [bold]http://{shown}:{port}[/]")

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
            console.print(f"[bold red]reload failed[/] ({names}); still serving the previous code:\n{exc}")
            continue
        console.print(f"reloaded after a change in {names}; rooms kept their state")


async def _work(app: App, backend: Backend, worker_id: str | None, lease_ttl: float) -> None:
    for room_type in app.room_types.values():
        room_type.freeze()
    await backend.open()
    worker = Worker(
        app.room_types, backend, worker_id=worker_id, lease_ttl_s=lease_ttl, code_version=app.version
    )
    await worker.start()
    console.print(f"roomwire {roomwire.__version__}: worker {worker.id} running app {app.name!r}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await worker.aclose()
    await backend.aclose()


if __name__ == "__main__":  # python -m roomwire.cli.main
    with contextlib.suppress(KeyboardInterrupt):
        main(prog_name=os.path.basename(sys.argv[0]))
