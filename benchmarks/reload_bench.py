"""``python -m benchmarks.reload_bench SITE --baseline DIR [--rounds N]``: how long the first
request after a publish waits in a web worker, for the code in DIR (``before``) and this
checkout (``after``).

Each web worker re-reads ``.feedserver/manifest.json`` on its first request after a
publish (:class:`feedserver.web.published.Store`); that request, and every other one the
worker holds meanwhile, waits for it.  At 50,000 articles the manifest was one file of
53 MB; in parts (format 4) a worker reads the root and the parts it has not read.

SITE is a built site (``config.toml`` and the ``out/`` it names, as ``python -m
benchmarks --large`` leaves ``.work``'s corpora, or any ``feedserver build``).  Both
sides serve that one folder as replicas (``feedserver serve --no-scheduler --workers
1``: no build, no scheduler, one worker, so each request meets the worker that reloads;
the poll budget off), on ports of their own.  Each round publishes the manifest again as
a build does (the same bytes renamed into place: a new file to every worker), then times
``GET /feed.atom`` on each side, the order alternating, and then a second request
(nothing to reload).  ``--after-site`` gives the after side a folder of its own (a
manifest format the before side cannot read); a manifest in parts is published again as
a one-file build at 50,000 articles publishes it: the root and ``--parts`` of its file
parts (18 there) as new files, the others as they were.  Prints each round, then
medians with min and max, and after / before, and each side's worker RSS at the end (a
worker that answered only these).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from .alternate import ROOT
from .serve_bench import stop

SIDES = ("before", "after")
MANIFEST = Path(".feedserver") / "manifest.json"
PARTS_DIR = Path(".feedserver") / "manifest"


def start(site: Path, code: Path, port: int) -> subprocess.Popen[bytes]:
    """``feedserver serve`` as a replica of SITE's output, answering on ``port``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDSERVER_")}
    env["PYTHONPATH"] = str(code)
    env["FEEDSERVER_POLL_BUDGET"] = "0"  # one address fetching one feed, on purpose
    process = subprocess.Popen(
        [sys.executable, "-m", "feedserver", "serve", "--no-scheduler", "--host",
         "127.0.0.1", "--port", str(port), "--workers", "1"],
        cwd=site, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            fetch(port)
            return process
        except OSError:
            if process.poll() is not None:
                raise SystemExit(f"serve on {port} exited ({process.returncode})") from None
            time.sleep(0.1)
    stop(process)
    raise SystemExit(f"serve on {port} did not answer in 300 s")


def fetch(port: int) -> float:
    """Seconds for one ``GET /feed.atom``, the body read."""
    started = time.perf_counter()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/feed.atom", timeout=120) as reply:
        reply.read()
    return time.perf_counter() - started


def republish(out: Path, parts: int = 0, serial: int = 0) -> None:
    """The manifest published again as a build publishes it: a new file renamed in; in
    parts, ``parts`` of its file parts (the first ones listed) new files too."""
    target = out / MANIFEST
    data = json.loads(target.read_bytes())
    if "parts" in data:
        folder = out / PARTS_DIR
        names = data["parts"]["files"]
        for at in [i for i, name in enumerate(names) if name][:parts]:
            renamed = f"f-bench-{serial}-{at}.json"
            os.replace(folder / names[at], folder / renamed)  # new bytes' name, same entries
            names[at] = renamed
    fresh = target.with_name(target.name + ".bench")
    fresh.write_bytes(json.dumps(data).encode())
    os.replace(fresh, target)


def worker_rss(master: int) -> float:
    """The largest RSS (MiB) among the processes a server's master started."""
    import psutil

    sizes = [0]
    for child in psutil.Process(master).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            sizes.append(child.memory_info().rss)
    return max(sizes) / 2**20


def out_dir(site: Path) -> Path:
    """The output folder SITE's config.toml names (load_settings resolves it against
    the config's folder)."""
    from feedserver.config import load_settings

    return Path(load_settings(site / "config.toml", env={}).output_dir)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("site", type=Path)
    parser.add_argument("--baseline", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--after-site", type=Path, default=None)
    parser.add_argument("--parts", type=int, default=18)
    args = parser.parse_args()
    sites = {"before": args.site.resolve(),
             "after": (args.after_site or args.site).resolve()}
    outs = {side: out_dir(sites[side]) for side in SIDES}
    size = (outs["before"] / MANIFEST).stat().st_size
    code = {"before": args.baseline.resolve(), "after": ROOT}
    ports = {"before": 18771, "after": 18772}
    servers = {side: start(sites[side], code[side], ports[side]) for side in SIDES}
    first: dict[str, list[float]] = {side: [] for side in SIDES}
    steady: dict[str, list[float]] = {side: [] for side in SIDES}
    try:
        for round_ in range(args.rounds):
            for out in dict.fromkeys(outs.values()):
                republish(out, args.parts, round_)
            order = SIDES if round_ % 2 == 0 else tuple(reversed(SIDES))
            for side in order:
                first[side].append(fetch(ports[side]))
            for side in order:
                steady[side].append(fetch(ports[side]))
            print(f"round {round_ + 1}: " + ", ".join(
                f"{side} {first[side][-1] * 1000:.1f} ms then {steady[side][-1] * 1000:.1f} ms"
                for side in SIDES), flush=True)
        rss = {side: worker_rss(servers[side].pid) for side in SIDES}
    finally:
        for process in servers.values():
            stop(process)
    print(f"\nms for GET /feed.atom, manifest {size / 1e6:.1f} MB, one worker a side, "
          "median (min-max):")
    for label, times in (("first after a publish", first), ("next request", steady)):
        medians = {side: statistics.median(times[side]) for side in SIDES}
        cells = ", ".join(f"{side} {medians[side] * 1000:.1f} "
                          f"({min(times[side]) * 1000:.1f}-{max(times[side]) * 1000:.1f})"
                          for side in SIDES)
        print(f"  {label}: {cells}; after/before {medians['after'] / medians['before']:.3f}")
    print("  worker RSS: " + ", ".join(f"{side} {rss[side]:.0f} MiB" for side in SIDES))
    return 0


if __name__ == "__main__":
    sys.exit(main())
