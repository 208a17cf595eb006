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
        """A clean stop, as a supervisor asks one (Kubernetes, Docker: SIGTERM to the process it started), then
        SIGKILL for the group if it is not done within ``timeout`` s, and for any child it left behind.

        Only the leader is sent SIGTERM: dramatiq's main process passes it on to its worker processes, and a
        worker process sent a second one (as a SIGTERM to the whole group would) exits at once, skipping its
        shutdown (an agent worker would leave its heartbeat rows behind, live for three more beats).
        """
        self.terminate()
        self.reap(time.monotonic() + timeout)

    def terminate(self, sig: int | None = None) -> None:
        """Ask the leader to stop (``sig``, SIGTERM by default); :meth:`reap` waits for it."""
        if self.alive():
            self.proc.send_signal(sig or signal.SIGTERM)

    def reap(self, deadline: float) -> None:
        """Wait for the leader until ``deadline`` (monotonic seconds), then SIGKILL the group and what it left."""
        try:
            self.proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.proc.wait(5)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the group outlives its reaped leader while a member lives
        except (ProcessLookupError, PermissionError):
            pass


#: Processes asked to stop whose exit nobody waited for (:func:`retire`); the session's end reaps them.
RETIRED: list[Process] = []


def retire(*processes: Process) -> None:
    """Ask each to stop (SIGTERM to the leader) without waiting: a module's stack shuts down while the next
    module runs (a dramatiq worker takes 2-3 s to stop cleanly). :func:`reap_retired` waits for them."""
    for process in processes:
        # gunicorn's graceful stop waits up to 25 s for idle keep-alive connections: its quick stop (SIGINT) here
        process.terminate(signal.SIGINT if process.name == "web" else signal.SIGTERM)
    RETIRED.extend(processes)


def reap_retired(timeout: float = 20.0) -> None:
    """Wait for the retired processes (SIGKILL for those still running after ``timeout`` s)."""
    deadline = time.monotonic() + timeout
    while RETIRED:
        RETIRED.pop().reap(deadline)


def stop_all(*processes: Process, timeout: float = 20.0) -> None:
    """:meth:`Process.stop` for each at once: a stack's teardown takes its slowest stop, not the sum."""
    for process in processes:
        process.terminate()
    deadline = time.monotonic() + timeout
    for process in processes:
        process.reap(deadline)


class Since:
    """A process as one module sees it: its log from the module's start on (the process may serve several)."""

    def __init__(self, process: Process) -> None:
        self.process = process
        self.offset = len(process.output())

    def output(self) -> str:
        return self.process.output()[self.offset :]

    def __getattr__(self, name: str):
        return getattr(self.process, name)


class Stacks:
    """The web and worker processes of the session's stack: consecutive modules whose ``stack_env`` is the
    same share them (starting a stack takes ~2 s and stopping it ~3 s; each module gets its own keys, queues
    purged, and the processes' logs from its start). A module marked ``own_stack`` gets its own. One stack
    runs at a time: its worker would take the messages of another's (and a module without a stack stops it).
    """

    #: Stacks kept running at most.
    KEEP = 1

    def __init__(self) -> None:
        self.running: dict[tuple[tuple[str, str], ...], tuple[Process, Process, str]] = {}

    def processes(self, env: dict[str, str]) -> tuple[Process, Process, str]:
        """The web, the worker and the web's base URL for ``env``: running ones, or started."""
        key = tuple(sorted(env.items()))
        found = self.running.pop(key, None)
        if found and not (found[0].alive() and found[1].alive()):
            retire(found[0], found[1])
            found = None
        while found is None and len(self.running) >= self.KEEP:
            retire(*self.running.pop(next(iter(self.running)))[:2])
        if found is None:
            web, base = start_web(env)  # (first: while it boots, a retired worker finishes its shutdown)
            found = (web, start_worker(env), base)
        self.running[key] = found  # the most recently used last
        return found

    def close(self) -> None:
        for web, worker, _ in self.running.values():
            retire(web, worker)
        self.running.clear()
        reap_retired()


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
    """A dramatiq worker process; ``gevent`` runs it as ``dramatiq-gevent`` (greenlets, as the executor does).

    Retired processes are waited for first: a worker still shutting down must not take this one's messages.
    """
    reap_retired()
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
