"""The failover load loop shared by benchmarks/bench_failover.py and tests/ha/test_ha_cluster.py.

Reporters send keyed reports at a steady rate, each retried with its Idempotency-Key until
acknowledged (as the phone pages' queues do); a Stream follows the case stream as a dispatcher's page
does, resuming with Last-Event-ID after every loss; `stored_once` counts each acknowledged case in
the database. The benchmark runs it for 40 s at 100 reports a second and prints figures; the test
runs it at a rate and length the suite can afford and asserts.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

import httpx
from sqlalchemy import create_engine, text

from cases.model import scoped_key
from store.engine import normalize_url

RETRY_S = 0.5  # the pause before a report is sent again
READ_EVERY_S = 0.1  # a dispatcher's list, read this often by Readers
# Longer than the server's GRIDMAP_DATABASE_WAIT_S (10 s): during a switchover a request waits that
# long for the new primary, and a client that gives up first sees its own timeout as an error.
CLIENT_TIMEOUT_S = 30


class Reporters:
    """`rate` keyed reports a second for `seconds`, each retried with its key until acknowledged.

    A report is given up after `give_up_s`, or at once when refused for a reason of its own (a 4xx
    other than 429: not the failover's doing).
    """

    def __init__(
        self, base: str, rate: float, seconds: float, body: Callable[[int], dict], *,
        give_up_s: float = 60, workers: int = 64,
    ) -> None:  # fmt: skip
        self.base, self.rate, self.seconds, self.body = base, rate, seconds, body
        self.give_up_s, self.workers = give_up_s, workers
        self.lock = threading.Lock()
        self.acked: dict[str, int] = {}  # key -> case id
        self.answers: Counter[str] = Counter()  # every answer: status code or error kind
        self.ack_times: list[float] = []
        self.sent = 0

    def run(self) -> None:
        """Send for `seconds`, then wait for the retries to settle."""
        start = time.monotonic()
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            while (n := self.sent) < self.rate * self.seconds:
                pool.submit(self._one, str(uuid.uuid4()), n)
                self.sent += 1
                time.sleep(max(0.0, (n + 1) / self.rate - (time.monotonic() - start)))

    def _one(self, key: str, n: int) -> None:
        made = time.monotonic()
        with httpx.Client(timeout=CLIENT_TIMEOUT_S) as client:
            while time.monotonic() - made < self.give_up_s:
                try:
                    answer = client.post(
                        f"{self.base}/cases", json=self.body(n), headers={"Idempotency-Key": key}
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
                if answer is not None and answer.status_code < 500 and answer.status_code != 429:
                    return  # refused for a reason: not the failover's doing
                time.sleep(RETRY_S)

    def longest_gap_after(self, moment: float) -> float | None:
        """The longest stretch without an acknowledgement from `moment` on (None: none came after)."""
        after = sorted(t for t in self.ack_times if t > moment)
        return max((b - a for a, b in itertools.pairwise([moment, *after])), default=None)


class Readers:
    """A dispatcher's `/cases` list, read again and again while the leader goes: every answer counted
    (a read is never retried: any answer but 200 is an error the dispatcher saw)."""

    def __init__(self, base: str, token: str) -> None:
        self.base, self.token = base, token
        self.seen: Counter[str] = Counter()
        self.stop = threading.Event()

    def run(self) -> None:
        """Read every READ_EVERY_S until stopped."""
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(timeout=CLIENT_TIMEOUT_S, headers=headers) as client:
            while not self.stop.is_set():
                try:
                    kind = str(client.get(f"{self.base}/cases", params={"limit": 20}).status_code)
                except httpx.HTTPError as exc:
                    kind = type(exc).__name__
                self.seen[kind] += 1
                time.sleep(READ_EVERY_S)


class Stream:
    """The case stream as a dispatcher's page follows it, resuming with Last-Event-ID after any loss."""

    def __init__(self, base: str, headers: dict[str, str], *, timeout_s: float = 10, pause_s: float = 0.5):
        self.base, self.headers, self.timeout_s, self.pause_s = base, headers, timeout_s, pause_s
        self.created: set[int] = set()  # case ids of the `created` events delivered
        self.statuses: Counter[int] = Counter()  # the status of every connection's answer
        self.reconnects = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Stream:
        """Follow the stream in a thread of its own until `stop` is set."""
        self.thread.start()
        return self

    def _run(self) -> None:
        last = None
        while not self.stop.is_set():
            headers = {**self.headers, **({"Last-Event-ID": last} if last else {})}
            try:
                url = f"{self.base}/cases/stream"
                with httpx.stream("GET", url, headers=headers, timeout=self.timeout_s) as answer:
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
            self.reconnects += 1
            time.sleep(self.pause_s)

    def wait_for(self, ids: set[int], timeout_s: float) -> None:
        """Wait until the stream delivered the creation of every case in `ids`, or `timeout_s` passed."""
        deadline = time.monotonic() + timeout_s
        while not ids <= self.created and time.monotonic() < deadline:
            time.sleep(0.5)


def stored_once(url: str, keys: Iterable[str]) -> tuple[int, int]:
    """(cases stored, of those stored more than once) for the public Idempotency-Keys `keys`."""
    scoped = [scoped_key(k, None) for k in keys]
    engine = create_engine(normalize_url(url))
    with engine.connect() as conn:
        counts = conn.execute(
            text(
                "SELECT count(*) FROM cases WHERE idempotency_key = ANY(CAST(:keys AS uuid[]))"
                " GROUP BY idempotency_key"
            ),
            {"keys": scoped},
        ).scalars().all()
    engine.dispose()
    return len(counts), sum(1 for n in counts if n > 1)
