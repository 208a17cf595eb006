"""A replicated broker: RABBITMQ_QUEUE_TYPE=quorum on a three-node RabbitMQ cluster started on this machine.

``scripts/rabbitmq-cluster.sh`` starts the cluster (nodes rabbit-oc1..3@localhost, joined with
``rabbitmqctl join_cluster``) with a short ``consumer_timeout``, and stops it when the module is done.
The product reaches each node through a :class:`~tests.proxy.TcpProxy`, so a test can cut one node's
listener for clients while the node stays in the cluster; RABBITMQ_URL lists the three proxies.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from dramatiq import Message
from peewee import fn

from app.auth import create_key
from app.brokers.rabbitmq import RabbitmqBroker
from app.db import init_database
from app.events.envelope import make_item
from app.ids import new_id
from app.migrate import migrate
from app.models import ProcessedEvent
from app.publishing import normalize_message
from tests import services
from tests.http import request
from tests.outage import PIPELINE, Traffic, queue_depths
from tests.processes import ROOT, Process, free_port, start_web, start_worker, wait_for
from tests.proxy import TcpProxy

pytestmark = pytest.mark.cluster

SCRIPT = ROOT / "scripts" / "rabbitmq-cluster.sh"
#: AMQP ports 5691-5693 (distribution 25691-25693): clear of a system node on 5672 and of the script's default.
BASE_PORT = 5691
#: A delayed message is held unacknowledged by its worker until due: a timeout shorter than the delay proves it
#: survives the channel RabbitMQ closes (the script has the nodes check it every second).
CONSUMER_TIMEOUT_MS = 5000
#: Leader elections once a majority is back take a moment: a request answered 503 may start up to this long after.
ELECTION_S = 5.0


class Cluster:
    """The three nodes of ``scripts/rabbitmq-cluster.sh`` under ``directory``."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def script(self, command: str, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        argv = [str(SCRIPT), command, *args, "--dir", self.directory, "--base-port", str(BASE_PORT)]
        if command == "start":
            argv += ["--consumer-timeout", str(CONSUMER_TIMEOUT_MS)]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)

    def ctl(self, node: int, *args: str) -> None:
        done = subprocess.run([str(SCRIPT), "ctl", str(node), "--dir", self.directory, "--base-port", str(BASE_PORT),
                               "--", *args], capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
        assert done.returncode == 0, f"rabbitmqctl {' '.join(args)} on node {node}: {done.stdout}{done.stderr}"

    def stop_app(self, node: int) -> None:
        """The node's broker stops (its client connections close, its queue replicas go away); the VM stays."""
        self.ctl(node, "stop_app")

    def start_app(self, node: int) -> None:
        self.ctl(node, "start_app")
        self.ctl(node, "await_startup")

    @staticmethod
    def node_url(node: int) -> str:
        return f"amqp://guest:guest@127.0.0.1:{BASE_PORT + node - 1}/%2F"


def _unavailable(message: str) -> None:
    if services.under_ci():
        pytest.fail(message + " (CI=true: the replicated-broker test must run)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    if not (shutil.which("rabbitmq-server") or shutil.which("rabbitmq-server", path="/usr/sbin:/usr/lib/rabbitmq/bin")):
        _unavailable("rabbitmq-server is not installed")
    cluster = Cluster(str(tmp_path_factory.mktemp("rabbitmq-cluster")))
    try:
        started = cluster.script("start")  # stopped below even when it times out half way
        if started.returncode != 0:
            _unavailable(f"the RabbitMQ cluster did not start:\n{started.stdout}{started.stderr}")
        yield cluster
    finally:
        stopped = cluster.script("stop")
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr


@pytest.fixture
def proxies(cluster) -> Iterator[list[TcpProxy]]:
    """One proxy in front of each node's AMQP listener, in node order."""
    front = [TcpProxy("127.0.0.1", BASE_PORT + n) for n in range(3)]
    yield front
    for proxy in front:
        proxy.close()


@pytest.fixture
def env(pg_url, proxies, cluster, tmp_path) -> dict[str, str]:
    init_database(pg_url, application_name="opsconductor-tests", max_connections=4)
    migrate()
    nodes = ",".join(proxy.url(cluster.node_url(n + 1)) for n, proxy in enumerate(proxies))
    return {"DATABASE_URL": pg_url, "RABBITMQ_URL": nodes, "RABBITMQ_QUEUE_TYPE": "quorum", "LOG_LEVEL": "INFO",
            "DEDUP_WINDOW_SECONDS": "300", "SPOOL_DIR": str(tmp_path / "spool")}  # fmt: skip


@dataclass
class Reply:
    """One webhook request: when it was sent and answered (monotonic seconds), and the status (0: no answer)."""

    n: int
    sent_at: float
    answered_at: float
    status: int


class TimedTraffic(Traffic):
    """:class:`~tests.outage.Traffic` that keeps each webhook request's times and status."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.replies: list[Reply] = []

    def _webhook(self) -> None:
        for n in self._paced(self.requests_per_s):
            batch = [{"source": "quorum-test", "severity": "high", "host": self.webhook_host,
                      "title": f"request {n} event {i}"} for i in range(self.events_per_request)]  # fmt: skip
            self.webhook_sent += len(batch)
            sent_at = time.monotonic()
            try:
                status = request(
                    "POST", f"{self.base}/api/v1/events/webhook", json=batch, key=self.key, timeout=30
                ).status
            except OSError:
                status = 0
            self.replies.append(Reply(n, sent_at, time.monotonic(), status))
            if status == 202:
                self.webhook_accepted += len(batch)
            else:
                self.refused += 1


def _titles_stored(host: str) -> dict[str, int]:
    query = (ProcessedEvent.select(ProcessedEvent.title, fn.COUNT(ProcessedEvent.id))
             .where(ProcessedEvent.source_host == host).group_by(ProcessedEvent.title).tuples())  # fmt: skip
    return dict(query)


def _start_pipeline(env: dict[str, str]) -> tuple[list[Process], str, int]:
    syslog_port = free_port()
    env = dict(env, SYSLOG_TCP_PORT=str(syslog_port), SYSLOG_UDP_PORT=str(free_port(socket.SOCK_DGRAM)))
    processes = [start_worker(env, queues=("normalize",)), start_worker(env, queues=("correlate", "evaluate"))]
    processes.append(Process("syslog", [sys.executable, "-m", "app.receivers.syslog"], env))
    web, base = start_web(env)
    processes.append(web)
    wait_for(lambda: "Syslog listening" in processes[2].output(), timeout=30, message="the syslog receiver")
    return processes, base, syslog_port


def _logs(processes: list[Process]) -> str:
    return "\n".join(f"--- {p.name}\n{p.output()[-3000:]}" for p in processes)


def _drained(traffic: TimedTraffic, cluster: Cluster, processes: list[Process], timeout: float = 180) -> float:
    """Wait until every syslog line is stored and the pipeline's queues are empty (the seconds it took); fail
    saying what is not."""
    started = time.monotonic()
    deadline = started + timeout
    while True:
        lines = _titles_stored(traffic.syslog_host)
        depths = queue_depths(cluster.node_url(3), (*PIPELINE, *(f"{q}.DQ" for q in PIPELINE)))
        if len(lines) >= traffic.lines and not any(depths[q] for q in PIPELINE):
            return time.monotonic() - started
        if time.monotonic() > deadline:
            missing = [n for n in range(traffic.lines) if f"line {n}" not in lines]
            pytest.fail(f"after {timeout:.0f} s: {len(lines)} of {traffic.lines} syslog lines stored (missing"
                        f" {len(missing)}: {missing[:5]}...{missing[-5:]}), ready messages {depths}\n{_logs(processes)}")  # fmt: skip
        time.sleep(0.5)


def test_losing_a_node_and_another_ones_listener_loses_no_accepted_event_and_503_comes_only_without_a_majority(
    cluster, proxies, env
):
    # Given web, syslog and workers on quorum queues of the three nodes, and steady webhook and syslog traffic
    processes, base, syslog_port = _start_pipeline(env)
    traffic = TimedTraffic(syslog_port=syslog_port, base=base, key=create_key(role="ingest", name="quorum test"),
                           lines_per_s=100, requests_per_s=4, events_per_request=10)  # fmt: skip
    try:
        traffic.start()
        time.sleep(4)
        # When node 1 stops, then node 2's listener is cut (the cluster keeps its majority: nodes 2 and 3) ...
        cluster.stop_app(1)
        time.sleep(5)
        proxies[1].down()
        time.sleep(5)
        # ... then node 2 stops too, leaving node 3 alone without a majority for 20 s ...
        cluster.stop_app(2)
        lost_at = time.monotonic()
        time.sleep(20)
        # ... and both come back
        restarting_at = time.monotonic()
        cluster.start_app(1)
        regained_at = time.monotonic()
        proxies[1].up()
        cluster.start_app(2)
        time.sleep(5)
        traffic.stop()
        drained = _drained(traffic, cluster, processes)
    finally:
        traffic.stop()
        for process in processes:
            process.stop()
    refused = [r for r in traffic.replies if r.status != 202]
    print(f"\nrequests {len(traffic.replies)}, refused {len(refused)} (seconds from the loss of the majority, sent/answered:"
          f" {[(round(r.sent_at - lost_at, 1), round(r.answered_at - lost_at, 1)) for r in refused]}), majority back"
          f" {restarting_at - lost_at:.1f}-{regained_at - lost_at:.1f} s, syslog lines {traffic.lines}, drained in"
          f" {drained:.1f} s")  # fmt: skip
    # Then every syslog line and every accepted webhook event is stored exactly once, nothing else is stored ...
    lines, webhooks = _titles_stored(traffic.syslog_host), _titles_stored(traffic.webhook_host)
    assert sorted(lines) == sorted(f"line {n}" for n in range(traffic.lines)), _logs(processes)
    assert set(lines.values()) == {1}
    accepted = {f"request {r.n} event {i}" for r in traffic.replies if r.status == 202 for i in range(10)}
    sent = {f"request {r.n} event {i}" for r in traffic.replies for i in range(10)}
    assert accepted <= set(webhooks) <= sent, _logs(processes)
    assert set(webhooks.values()) == {1}
    # ... web refused only requests that overlapped the time without a majority, and accepted none inside it ...
    assert all(r.status == 503 for r in refused), refused
    assert all(r.answered_at >= lost_at and r.sent_at <= regained_at + ELECTION_S for r in refused), (
        [(round(r.sent_at - lost_at, 1), round(r.answered_at - lost_at, 1)) for r in refused],
        round(regained_at - lost_at, 1),
        _logs(processes),
    )
    inside = [r for r in traffic.replies if r.status == 202 and lost_at + 1 < r.answered_at < restarting_at]
    assert not inside, ([(round(r.sent_at - lost_at, 1), round(r.answered_at - lost_at, 1)) for r in inside],
                        round(restarting_at - lost_at, 1))  # fmt: skip
    assert len(accepted) > 0.6 * len(sent)
    # ... and nothing was dead-lettered
    assert queue_depths(cluster.node_url(3), tuple(f"{q}.XQ" for q in PIPELINE)) == dict.fromkeys(
        (f"{q}.XQ" for q in PIPELINE), 0
    )


def _item(host: str, title: str) -> dict:
    payload = {"source": "quorum-test", "severity": "high", "host": host, "title": title}
    return make_item(id=new_id(), source_type="webhook", received_at=time.time(), payload=payload)


def test_a_delayed_message_outlives_the_consumer_timeout_and_a_poison_message_still_reaches_its_dead_letter_queue(
    cluster, env
):
    # Given a worker on the quorum queues, whose nodes close a channel holding a delivery for 5 s
    worker = start_worker(env, queues=("normalize",))
    broker = RabbitmqBroker(url=[cluster.node_url(n) for n in (1, 2, 3)], queue_type="quorum", confirm_delivery=True)
    host = f"quorum-delay-{uuid.uuid4().hex[:8]}"
    try:
        wait_for(lambda: "Worker process is ready" in worker.output(), timeout=30, message="the worker")
        # When an event is sent with a delay of 15 s (three consumer timeouts), and a malformed message right after
        delayed = normalize_message([_item(host, "delayed")])
        broker.enqueue(delayed, delay=15_000)
        poison = Message(queue_name="normalize", actor_name="normalize", args=({"not": "a batch"},), kwargs={},
                         options={})  # fmt: skip
        broker.enqueue(poison)
        # Then the poison message lands in normalize.XQ (rejected by Dramatiq, dead-lettered by the quorum queue)
        dead = wait_for(lambda: services.get_dead_letters("normalize", cluster.node_url(2)), timeout=30,
                        message="the poison message dead-lettered")  # fmt: skip
        # ... the delayed event is not stored before it is due, though RabbitMQ took it back from the worker ...
        wait_for(lambda: "timed out" in worker.output(), timeout=30, message="a consumer timeout")
        assert _titles_stored(host) == {}
        # ... and it is stored once when due
        wait_for(lambda: _titles_stored(host), timeout=40, message="the delayed event stored")
        time.sleep(2)
    finally:
        broker.close()
        worker.stop()
    assert [Message.decode(body).message_id for body in dead] == [poison.message_id]
    assert _titles_stored(host) == {"delayed": 1}
    assert queue_depths(cluster.node_url(1), ("normalize.DQ", "normalize.XQ")) == {"normalize.DQ": 0, "normalize.XQ": 0}


def test_a_process_refuses_to_start_on_queues_of_another_type_and_names_the_queue(cluster, env):
    # Given the queues of the cluster already declared as quorum queues (by the tests above or now)
    RabbitmqBroker(url=cluster.node_url(1), queue_type="quorum").declare_queue("normalize", ensure=True)
    # When a worker starts with RABBITMQ_QUEUE_TYPE=classic
    worker = start_worker(dict(env, RABBITMQ_QUEUE_TYPE="classic"), queues=("normalize",))
    try:
        wait_for(lambda: "QueueMismatch" in worker.output(), timeout=30, message="the refusal")
    finally:
        worker.stop()
    # Then it says which queue, why, and what to do, instead of retrying forever
    named = re.search(r"refused to declare queue '([\w.]+)' as a classic queue", worker.output())
    assert named and named.group(1).partition(".")[0] in services.QUEUES, worker.output()
    assert "set RABBITMQ_QUEUE_TYPE=quorum" in worker.output() and "cannot change in place" in worker.output()
    assert not worker.alive()
