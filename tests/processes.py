"""Real processes for integration tests: gunicorn (gevent worker), dramatiq workers, the all-in-one."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.http import request

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Process:
    """A child process whose output goes to a file the test can read."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], *, cwd: Path | None = None) -> None:
        self.name = name
        self.log = tempfile.NamedTemporaryFile(prefix=f"oc-{name}-", suffix=".log", delete=False)
        full_env = {k: v for k, v in os.environ.items() if k not in ("RABBITMQ_URL", "CLOUDAMQP_URL", "DATABASE_URL")}
        full_env.update(env)
        self.proc = subprocess.Popen(
            argv, cwd=cwd or ROOT, env=full_env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            os.killpg(self.proc.pid, sig)

    def stop(self, timeout: float = 20.0) -> None:
        if not self.alive():
            return
        self.signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.proc.wait(5)


def wait_http(url: str, *, process: Process, timeout: float = 30.0, status: int = 200) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if not process.alive():
            raise RuntimeError(f"{process.name} exited:\n{process.output()[-3000:]}")
        try:
            reply = request("GET", url, timeout=2)
            if reply.status == status:
                return
            last = reply.status
        except OSError as e:
            last = e
        time.sleep(0.2)
    raise TimeoutError(f"{url} not answering {status} (last: {last}):\n{process.output()[-3000:]}")


def start_web(env: dict[str, str], *, port: int | None = None, workers: int = 1) -> tuple[Process, str]:
    port = port or free_port()
    argv = [str(BIN / "gunicorn"), "-c", "python:app.http.gunicorn_conf", "-w", str(workers), "-b", f"127.0.0.1:{port}",
            "app.http.wsgi:app"]  # fmt: skip
    web = Process("web", argv, env)
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/healthz", process=web)
    return web, base


def start_worker(
    env: dict[str, str], *, queues: tuple[str, ...] = (), threads: int = 4, gevent: bool = False
) -> Process:
    """A dramatiq worker process; ``gevent`` runs it as ``dramatiq-gevent`` (greenlets, as the executor does)."""
    argv = [str(BIN / ("dramatiq-gevent" if gevent else "dramatiq")), "app.worker", "--processes", "1",
            "--threads", str(threads)]  # fmt: skip
    if queues:
        argv += ["--queues", *queues]
    return Process("worker", argv, env)


def wait_for(predicate, *, timeout: float = 20.0, interval: float = 0.1, message: str = "condition"):
    """Poll ``predicate`` until it returns a truthy value; return that value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout} s waiting for {message}")
