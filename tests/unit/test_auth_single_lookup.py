"""A key whose cache entry expired is looked up once, however many requests carry it at that moment."""

from __future__ import annotations

import threading
import time

import app.auth
from app.auth import KeyStore, create_key


def test_concurrent_misses_of_one_key_make_one_database_lookup(any_db, monkeypatch):
    key = create_key(role="ingest", name="sender")
    calls = []
    real = app.auth.in_transaction

    def slow_lookup(work):
        calls.append(1)
        time.sleep(0.1)  # a lookup in flight while the other requests arrive
        return real(work)

    monkeypatch.setattr(app.auth, "in_transaction", slow_lookup)
    keys = KeyStore(ttl_s=30)
    principals = []
    threads = [threading.Thread(target=lambda: principals.append(keys.verify(key))) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(principals) == 20 and all(p is not None and p.name == "sender" for p in principals)
    assert len(calls) == 1


def test_an_unknown_key_is_refused_to_every_request_waiting_on_its_lookup(any_db):
    keys = KeyStore(ttl_s=30)
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(keys.verify("oc_nobody"))) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [None] * 5
