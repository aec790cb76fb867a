"""Debian's real nginx over an output folder, with the config `feedserver export nginx` writes.

Used by the contract suite (tests/system/test_contract.py) and the serving benchmark
(benchmarks/nginx_bench.py): :func:`nginx_serving` runs the export command for a
site, wraps its include file in a minimal main config (pid file, logs and temp
folders in a work folder of its own, the brotli_static module loaded), starts
``nginx -p <work> -c <conf> -g 'daemon off;'`` on 127.0.0.1 and stops it by its PID.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from feedserver.publish.nginx import BROTLI_MODULE

READY_SECONDS = 30


@dataclass
class Nginx:
    url: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    conf: Path  # the include file the export wrote


def nginx_binary() -> str | None:
    """Debian's nginx (package nginx-light), or None when it is not installed."""
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)


def missing_reason() -> str | None:
    """Why the nginx half of a test cannot run here (None: it can)."""
    if nginx_binary() is None:
        return ("nginx is not installed "
                "(apt-get install nginx-light libnginx-mod-http-brotli-static)")
    if not Path(BROTLI_MODULE).is_file():
        return f"nginx's brotli_static module is missing ({BROTLI_MODULE}: " \
               "apt-get install libnginx-mod-http-brotli-static)"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main_config(work: Path, include: Path, workers: int) -> str:
    """nginx.conf around the generated include: everything nginx writes stays in ``work``."""
    user = ""
    if os.geteuid() == 0:  # workers would become "nobody", who cannot read a test's tmp
        name = pwd.getpwuid(os.geteuid()).pw_name
        user = f"user {name};\n"
    temps = "".join(f"    {kind}_temp_path {work / kind};\n"
                    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return (f"load_module {BROTLI_MODULE};\n{user}worker_processes {workers};\n"
            f"pid {work / 'nginx.pid'};\nerror_log {work / 'error.log'} warn;\n"
            "events { worker_connections 1024; }\n"
            f"http {{\n    access_log off;\n{temps}    include {include};\n}}\n")


def export(env: Mapping[str, str], cwd: Path, target: Path, listen: str) -> None:
    """``feedserver export nginx --out target --listen listen``, as an operator runs it."""
    done = subprocess.run([sys.executable, "-m", "feedserver", "export", "nginx", "--out",
                           str(target), "--listen", listen], cwd=cwd, env=dict(env),
                          capture_output=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"export failed: {done.stderr.decode(errors='replace')}")


@contextlib.contextmanager
def nginx_serving(env: Mapping[str, str], cwd: Path, work: Path,
                  workers: int = 1) -> Iterator[Nginx]:
    """nginx on a free 127.0.0.1 port serving the output folder the settings in
    ``env`` (FEEDSERVER_*, config.toml in ``cwd``) name; its URL, stopped afterwards."""
    binary = nginx_binary()
    if binary is None:
        raise RuntimeError(missing_reason())
    work.mkdir(parents=True, exist_ok=True)
    port = free_port()
    include = work / "feedserver.conf"
    export(env, cwd, include, f"127.0.0.1:{port}")
    conf = work / "nginx.conf"
    conf.write_text(main_config(work, include, workers), encoding="utf-8")
    log = work / "nginx.out"
    with log.open("wb") as out:
        process = subprocess.Popen([binary, "-p", str(work), "-c", str(conf),
                                    "-g", "daemon off;"], stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_ready(port, process, log, work / "error.log")
        yield Nginx(f"http://127.0.0.1:{port}/", port, process, log, include)
    finally:
        if process.poll() is None:
            process.terminate()  # SIGTERM: nginx's fast shutdown
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def _wait_ready(port: int, process: subprocess.Popen[bytes], log: Path,
                errors: Path) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            text = log.read_text(errors="replace")
            if errors.exists():
                text += errors.read_text(errors="replace")
            raise RuntimeError(f"nginx exited with {process.returncode}:\n{text}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nginx did not listen within {READY_SECONDS}s")
