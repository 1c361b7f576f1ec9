"""The primary dies under intake (kill -9 of its postmaster): nothing acknowledged is lost or doubled,
the service answers again without a restart, never with a 500, and the case stream resumes.

The issue's full run (100 reports/s for 40 s) is benchmarks/bench_failover.py; this is the same
path at a rate and length the suite can afford.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
from sqlalchemy import create_engine, text

from access.roles import Role
from cases.model import scoped_key
from store.engine import normalize_url
from tests import factories as f
from tests.ha.conftest import report
from tests.live import server, sign_in

RATE, SECONDS, KILL_AT = 20, 14, 4  # reports a second, for how long, when the primary goes
BACK_WITHIN_S = 30


class Reporters:
    """Keyed reports at a steady rate, each retried with its key until acknowledged (as the phone
    pages' queues do)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.lock = threading.Lock()
        self.acked: dict[str, int] = {}
        self.answers: Counter[str] = Counter()
        self.ack_times: list[float] = []
        self.sent = 0

    def run(self) -> None:
        start = time.monotonic()
        with ThreadPoolExecutor(max_workers=32) as pool:
            while (n := self.sent) < RATE * SECONDS:
                pool.submit(self._one, str(uuid.uuid4()), n)
                self.sent += 1
                time.sleep(max(0.0, (n + 1) / RATE - (time.monotonic() - start)))

    def _one(self, key: str, n: int) -> None:
        made = time.monotonic()
        with httpx.Client(timeout=10) as client:
            while time.monotonic() - made < BACK_WITHIN_S + 15:
                try:
                    answer = client.post(
                        f"{self.base}/cases", json=report(f"故障切换 {n}"), headers={"Idempotency-Key": key}
                    )
                    kind = str(answer.status_code)
                except httpx.HTTPError as exc:
                    answer, kind = None, type(exc).__name__
                with self.lock:
                    self.answers[kind] += 1
                if answer is not None and answer.status_code in (200, 201):
                    with self.lock:
                        self.acked[key] = answer.json()["id"]
                        self.ack_times.append(time.monotonic())
                    return
                time.sleep(0.5)


class Stream:
    """A dispatcher's case stream, resumed with Last-Event-ID after every loss."""

    def __init__(self, base: str, auth: dict) -> None:
        self.base, self.auth = base, auth
        self.created: set[int] = set()
        self.statuses: Counter[int] = Counter()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        last = None
        while not self.stop.is_set():
            headers = {**self.auth, **({"Last-Event-ID": last} if last else {})}
            try:
                with httpx.stream("GET", f"{self.base}/cases/stream", headers=headers, timeout=10) as answer:
                    self.statuses[answer.status_code] += 1
                    event = None
                    for line in answer.iter_lines():
                        if self.stop.is_set():
                            return
                        if line.startswith("id:"):
                            last = line[3:].strip()
                        elif line.startswith("event:"):
                            event = line[6:].strip()
                        elif line.startswith("data:") and event == "created":
                            data = json.loads(line[5:])
                            self.created.add(int(data.get("id") or data["case"]["id"]))
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.5)


def test_kill_9_of_the_primary_under_keyed_intake_loses_nothing_and_the_service_comes_back(healthy):
    ha = healthy
    with server(ha.url, public_intake_per_minute="100000") as base:
        stream = Stream(base, sign_in(base, normalize_url(ha.url), Role.DISPATCHER, f.COUNTY))
        reporters = Reporters(base)
        load = threading.Thread(target=reporters.run)
        load.start()
        time.sleep(KILL_AT)
        killed = ha.cluster.kill_leader()  # kill -9 of its postmaster and its Patroni: the machine fails
        killed_at = time.monotonic()
        try:
            load.join()
        finally:
            ha.cluster.restart_node(killed)  # it rejoins as a replica (pg_rewind) for the next tests
        acked = set(reporters.acked.values())
        deadline = time.monotonic() + 20
        while not acked <= stream.created and time.monotonic() < deadline:
            time.sleep(0.5)
        stream.stop.set()

    assert "500" not in reporters.answers, reporters.answers
    assert len(reporters.acked) == reporters.sent, f"unacknowledged: {reporters.answers}"
    after = sorted(t for t in reporters.ack_times if t > killed_at)
    gaps = [b - a for a, b in zip([killed_at, *after], after, strict=False)]
    assert after and max(gaps) < BACK_WITHIN_S, f"writes stopped for {max(gaps, default=None)} s"
    engine = create_engine(normalize_url(ha.url))
    with engine.connect() as conn:
        keys = [scoped_key(k, None) for k in reporters.acked]
        stored = conn.execute(
            text(
                "SELECT count(*) FROM cases WHERE idempotency_key = ANY(CAST(:k AS uuid[]))"
                " GROUP BY idempotency_key"
            ),
            {"k": keys},
        ).all()
    engine.dispose()
    assert len(stored) == len(keys) and all(n == 1 for (n,) in stored)  # each acknowledged case once
    assert acked <= stream.created, f"{len(acked - stream.created)} created events missed"
    assert 500 not in stream.statuses
