"""A/B of roomwire's hot path: two source trees measured in turns, on one scenario.

    python3 bench/ab.py                          # the working tree against HEAD
    python3 bench/ab.py --base HEAD~3 --rounds 6 --baseline bare
    python3 bench/ab.py --scenario ping          # round-trip latency instead of CPU

Every round starts each variant's server afresh, pinned as bench/run.py pins it, and drives it
with one scenario of bench/loadgen.py. `lockstep` (the default) keeps one move in flight at a
time, so that no figure depends on how much batching a load happened to allow: its figure is the
server's CPU per 1,000 deliveries. `ping`'s is the p50 round trip. The base revision's `src/` is
extracted with `git archive` into a temporary folder put first on PYTHONPATH: both variants run
on the project's venv and its installed libraries. Prints each variant's best and median figure
and the ratios to the base; the best counts, as in run.py, since a neighbour on a shared host
only ever makes a run look worse.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import run

# One round: every variant once. Bounded: a stuck server or load generator fails the run.
LOADGEN_TIMEOUT_S = 300.0
# Per scenario: the figure compared, how to show it, and its factor from the load generator's unit.
FIGURES = {
    "lockstep": ("server_cpu_s_per_1k", "server CPU ms / 1,000 deliveries", 1000.0),
    "ping": ("p50_us", "p50 round trip µs", 1.0),
}


def extract(revision: str, into: Path) -> Path:
    """The `src/` folder of `revision`, written under `into`; raises CalledProcessError if unknown."""
    archive = subprocess.run(
        ["git", "archive", revision, "src"], cwd=run.PROJECT, capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into / "src"


def measure(
    variant: str,
    env: dict[str, str] | None,
    args: argparse.Namespace,
    python: Path,
    run_dir: Path,
    round_: int,
) -> dict[str, Any]:
    """One fresh server and one run of the scenario; the load generator's figures, or {"error": ...}."""
    target = "bare" if variant == "bare" else "roomwire"
    port = run.free_port()
    argv = run.server_command(target, python, run.DEFAULT_ROOMWIRE_CMD, port)
    stem = run_dir / f"{variant}-{round_}"
    out = stem.with_name(stem.name + ".json")
    server_pin, loadgen_pin, _ = run.pinning()
    loadgen = [
        str(python),
        str(run.BENCH / "loadgen.py"),
        *("--target", target, "--scenario", args.scenario, "--host", run.HOST, "--port", str(port)),
        *("--rooms", str(args.rooms), "--clients", str(args.clients)),
        *("--count", str(args.moves), "--warmup-count", str(args.warmup_moves), "--out", str(out)),
    ]
    run.wait_for_quiet(args.quiet_wait_s)
    try:
        with run.running_server(argv, server_pin, port, stem.with_name(stem.name + ".log"), env) as pid:
            command = loadgen_pin + loadgen + ["--server-pid", str(pid)]
            status, tail = run._run_streaming(command, LOADGEN_TIMEOUT_S)
    except RuntimeError as exc:
        return {"error": str(exc)}
    if status != 0:
        return {"error": f"load generator exited with {status}: {tail}"}
    try:
        figures: dict[str, Any] = json.loads(out.read_text())
    except (OSError, ValueError) as exc:
        return {"error": f"no figures from the load generator: {exc}"}
    if figures.get("lost") or figures.get("server_errors"):
        return {"error": f"{figures['lost']} deliveries lost, {figures['server_errors']} server errors"}
    return figures


def table(runs: dict[str, list[dict[str, Any]]], base: str, scenario: str) -> str:
    """Markdown: each variant's best and median figure, its runs, and its ratios to `base`."""
    key, label, factor = FIGURES[scenario]
    cpu = {
        variant: sorted(r[key] * factor for r in done if isinstance(r.get(key), int | float))
        for variant, done in runs.items()
    }
    lines = [
        f"| variant | best {label} | median | runs | best ÷ base | median ÷ base |",
        "|---|---|---|---|---|---|",
    ]
    for variant, values in cpu.items():
        if not values:
            lines.append(f"| {variant} | failed | | 0 | | |")
            continue
        best, median = values[0], statistics.median(values)
        ratios = ("", "")
        if cpu[base] and variant != base:
            ratios = (f"{best / cpu[base][0]:.3f}", f"{median / statistics.median(cpu[base]):.3f}")
        spread = ", ".join(f"{v:.1f}" for v in values)
        lines.append(f"| {variant} | {best:.2f} | {median:.2f} | {spread} | {ratios[0]} | {ratios[1]} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line of the A/B."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", default="HEAD", help="git revision to compare the working tree with")
    p.add_argument("--baseline", choices=["bare"], default=None, help="also run this server each round")
    p.add_argument("--scenario", choices=sorted(FIGURES), default="lockstep")
    p.add_argument("--rounds", type=int, default=4, help="every variant once per round")
    p.add_argument("--moves", type=int, default=10000, help="measured moves (ping: round trips) per run")
    p.add_argument("--warmup-moves", type=int, default=200)
    p.add_argument("--rooms", type=int, default=2)
    p.add_argument("--clients", type=int, default=10, help="clients per room")
    p.add_argument("--quiet-wait-s", type=float, default=30.0, help="wait this long for a quiet machine")
    p.add_argument("--venv", type=Path, default=run.DEFAULT_VENV, help="the benchmark's own venv")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the rounds and print the table; exit status 1 when a variant never completed a run."""
    args = parse_args(argv)
    if args.rounds < 1 or args.moves < 1:
        print("--rounds and --moves must be at least 1", file=sys.stderr)
        return 2
    python = run.ensure_venv(args.venv)
    run.raise_fd_limit()
    run_dir = run.RESULTS / f"ab-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="roomwire-ab-") as tmp:
        try:
            base_src = extract(args.base, Path(tmp))
        except subprocess.CalledProcessError as exc:
            why = exc.stderr.decode(errors="replace").strip()
            print(f"cannot extract {args.base!r}: {why}", file=sys.stderr)
            return 2
        base_env = {**os.environ, "PYTHONPATH": str(base_src)}
        loaded = subprocess.run(
            [str(run.PROJECT_PYTHON), "-c", "import roomwire; print(roomwire.__file__)"],
            env=base_env,
            capture_output=True,
            text=True,
        )
        if not loaded.stdout.startswith(str(base_src)):
            # The project's venv must let PYTHONPATH come first (an editable install does).
            why = loaded.stdout or loaded.stderr
            print(f"the base does not load from {base_src}: {why}", file=sys.stderr)
            return 2
        base = f"base ({args.base})"
        variants: dict[str, dict[str, str] | None] = {
            base: base_env,
            "working tree": None,
        }
        if args.baseline:
            variants[args.baseline] = None
        runs: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
        record = {"args": vars(args) | {"venv": str(args.venv)}, "runs": runs}
        for round_ in range(args.rounds):
            # Every other round in reverse order, so that no variant always runs first.
            order = list(variants) if round_ % 2 == 0 else list(reversed(variants))
            for variant in order:
                print(f"- round {round_ + 1}/{args.rounds}: {variant} ...", file=sys.stderr, flush=True)
                figures = measure(variant, variants[variant], args, python, run_dir, round_)
                if "error" in figures:
                    print(f"    {figures['error']}", file=sys.stderr)
                runs[variant].append(figures)
                (run_dir / "runs.json").write_text(json.dumps(record, indent=2))  # kept if stopped
    shape = f"{args.rooms} rooms x {args.clients} clients, " if args.scenario == "lockstep" else ""
    print(
        f"{args.scenario}: {shape}{args.moves:,} per run; "
        f"JSON: {run_dir.relative_to(run.PROJECT)}/runs.json\n"
    )
    print(table(runs, base, args.scenario))
    return 0 if all(any("error" not in r for r in rs) for rs in runs.values()) else 1


if __name__ == "__main__":
    # SIGTERM (e.g. from `timeout`) unwinds like Ctrl-C, so the servers are stopped.
    signal.signal(signal.SIGTERM, run._interrupt)
    sys.exit(main())
