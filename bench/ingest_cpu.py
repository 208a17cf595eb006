"""CPU per accepted event inside the web app: the Falcon app and its middleware, nothing around them.

Calls the WSGI app of ``app.http.app.create_app`` for single-event webhook requests, each in a greenlet
of its own under a monkey-patched interpreter (as gunicorn's gevent worker runs them), with the key
already verified and a publisher that confirms at once: no HTTP parsing, no broker, no wait. What is
left is what the product adds per request, so a change to it shows here without wrk's noise (on a
shared machine, ``bench/webhook.py`` reports requests/s that swing with the neighbours' load).

    .venv/bin/python bench/ingest_cpu.py [--requests 20000] [--rounds 7] [--database opsconductor_bench]

Prints the median and the lowest µs of CPU per request over the rounds. For an A/B, run it from each
checkout in turn (``cd /tmp/base && .venv/bin/python /path/to/bench/ingest_cpu.py``): it imports the
``app`` package of the working directory.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import io  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402

sys.path.insert(0, os.getcwd())

BODY = (
    b'{"source":"bench","severity":"high","host":"web-1","service":"nginx","title":"CPU high","metadata":{"cpu":97.5}}'
)
KEY = "oc_bench_ingest_cpu"


class Confirmed:
    """A publisher whose broker confirms at once."""

    def publish(self, items: list[dict[str, Any]]) -> None:
        pass


def environ() -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "POST", "PATH_INFO": "/api/v1/events/webhook", "QUERY_STRING": "", "SERVER_NAME": "bench",
        "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(BODY),
        "wsgi.errors": sys.stderr, "CONTENT_LENGTH": str(len(BODY)), "CONTENT_TYPE": "application/json",
        "HTTP_AUTHORIZATION": f"Bearer {KEY}", "REMOTE_ADDR": "127.0.0.1",
    }  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument(
        "--database", default="opsconductor_bench", help="a PostgreSQL database on DATABASE_URL's server"
    )
    args = parser.parse_args()
    from urllib.parse import urlsplit, urlunsplit

    from app.auth import KeyStore, Principal, _digest
    from app.db import init_database
    from app.http.app import Deps, create_app

    base = os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/test"
    init_database(urlunsplit(urlsplit(base)._replace(path="/" + args.database)), max_connections=4)
    keys = KeyStore()
    forever = time.monotonic() + 1e9
    keys._cache[_digest(KEY)] = (forever, forever, Principal(1, "bench", "ingest"))  # verified, as in steady state
    app = create_app(Deps(publisher=Confirmed(), keys=keys))

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        if not status.startswith("202"):
            raise SystemExit(f"answered {status}")

    def one() -> None:
        b"".join(app(environ(), start_response))

    per_request_us = []
    for _ in range(args.rounds):
        started = time.process_time()
        for _ in range(args.requests // 100):
            gevent.joinall([gevent.spawn(one) for _ in range(100)])  # a greenlet per request, as gevent.pywsgi does
        per_request_us.append((time.process_time() - started) / args.requests * 1e6)
    print(f"CPU per request: median {statistics.median(per_request_us):.1f} µs, lowest {min(per_request_us):.1f} µs "
          f"({args.rounds} rounds of {args.requests})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
