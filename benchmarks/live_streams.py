"""Live-feed clients for the intake benchmark: open SSE streams, and one that counts every event.

Runs in a process of its own (the load generator's process stays free of it): `Watcher` opens
`n` streams on /cases/stream as one user plus one counting stream (as a user who sees every
case). Every stream asks for `Accept-Encoding: deflate` as browsers do (or `identity`, to compare):
the readers only drain what they receive (as cheaply as possible: raw HTTP/1.1), and SAMPLED of
them inflate it and count its events, while the counting stream inflates and parses every event
and keeps the case ids of `created` ones. Given the
ids of the cases the service acknowledged, it waits until each has arrived (or nothing more comes
for SETTLE_S) and answers how many arrived, how many twice, how many never.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import zlib
from collections import Counter
from collections.abc import Callable
from multiprocessing.connection import Connection
from urllib.parse import urlsplit

SETTLE_S = 10.0  # after the load: give up on missing events when none arrived for this long
MARK = b"\r\nevent: "  # one per event in the stream's bytes
SAMPLED = 10  # readers that inflate and count what they receive (inflating is the client's CPU)


async def open_stream(
    base: str, auth: dict[str, str], encoding: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, Inflate]:
    """GET /cases/stream on a connection of its own; raises if the answer is not 200."""
    url = urlsplit(base)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    head = "".join(f"{k}: {v}\r\n" for k, v in {**auth, "Accept-Encoding": encoding}.items())
    request = f"GET /cases/stream HTTP/1.1\r\nHost: {url.netloc}\r\nAccept: text/event-stream\r\n{head}\r\n"
    writer.write(request.encode())
    answer = (await reader.readuntil(b"\r\n\r\n")).lower()
    status = answer.split(b" ", 2)[1]
    if status != b"200":
        writer.close()
        raise ConnectionRefusedError(f"the stream was refused: {status.decode()}")
    deflated = b"\r\ncontent-encoding: deflate\r\n" in answer
    return reader, writer, zlib.decompressobj().decompress if deflated else bytes


Inflate = Callable[[bytes], bytes]


async def chunks(reader: asyncio.StreamReader):
    """The body's chunks (chunked transfer encoding), until the server ends it."""
    while True:
        size = int((await reader.readline()).strip() or b"0", 16)
        if size == 0:
            return
        yield (await reader.readexactly(size + 2))[:-2]


class Watch:
    """The streams of one run and what they received."""

    def __init__(self) -> None:
        self.events = 0  # events received by the sampled readers, together
        self.sampled = 0  # sampled readers connected
        self.bytes = 0  # bytes received by the plain readers, together (as sent: compressed or not)
        self.created: Counter[int] = Counter()  # case id -> `created` events received by the counter
        self.connected = 0
        self.refused = 0

    async def read(
        self, base: str, auth: dict[str, str], encoding: str, sampled: bool, ready: asyncio.Event
    ) -> None:
        """A plain reader: drains its stream; a sampled one also inflates it and counts the events."""
        try:
            reader, writer, inflate = await open_stream(base, auth, encoding)
        except ConnectionRefusedError:
            self.refused += 1
            ready.set()
            return
        self.connected += 1
        self.sampled += sampled
        ready.set()
        tail = b""
        try:
            async for chunk in chunks(reader):
                self.bytes += len(chunk)
                if sampled:
                    text = inflate(chunk)
                    self.events += (tail + text).count(MARK)
                    tail = text[-(len(MARK) - 1) :]
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def count(self, base: str, auth: dict[str, str], encoding: str, ready: asyncio.Event) -> None:
        """The counting reader: the case id of every `created` event."""
        reader, writer, inflate = await open_stream(base, auth, encoding)
        ready.set()
        text = ""
        try:
            async for chunk in chunks(reader):
                text += inflate(chunk).decode()
                *blocks, text = text.split("\r\n\r\n")
                for block in blocks:
                    lines = block.split("\r\n")
                    if "event: created" in lines:
                        data = next(line for line in lines if line.startswith("data: "))
                        self.created[json.loads(data[6:])["id"]] += 1
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


async def _watch(
    base: str, auth: dict[str, str], counter: dict[str, str], n: int, encoding: str, pipe: Connection
) -> None:
    watch = Watch()
    loop = asyncio.get_running_loop()
    readies = [asyncio.Event() for _ in range(n + 1)]
    tasks = [asyncio.create_task(watch.count(base, counter, encoding, readies[0]))]
    for i, ready in enumerate(readies[1:]):
        tasks.append(asyncio.create_task(watch.read(base, auth, encoding, i < SAMPLED, ready)))
        await asyncio.sleep(0.002)  # not all in one burst of connections
    for ready in readies:
        await ready.wait()
    pipe.send({"connected": watch.connected, "refused": watch.refused})
    acknowledged: list[int] = await loop.run_in_executor(None, pipe.recv)
    wanted, quiet, seen = set(acknowledged), 0.0, -1
    while not wanted <= watch.created.keys() and quiet < SETTLE_S:
        quiet = quiet + 0.2 if len(watch.created) == seen else 0.0
        seen = len(watch.created)
        await asyncio.sleep(0.2)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    received = {i: c for i, c in watch.created.items() if i in wanted}
    pipe.send(
        {
            "acknowledged": len(wanted),
            "received": len(received),
            "twice": sum(1 for c in received.values() if c > 1),
            "missing": len(wanted - received.keys()),
            "events_per_reader": watch.events / max(watch.sampled, 1),
            "bytes_per_reader": watch.bytes / max(watch.connected, 1),
        }
    )


def _run(
    base: str, auth: dict[str, str], counter: dict[str, str], n: int, encoding: str, pipe: Connection
) -> None:
    asyncio.run(_watch(base, auth, counter, n, encoding, pipe))


class Watcher:
    """The process holding the streams of one run."""

    def __init__(
        self, base: str, auth: dict[str, str], counter: dict[str, str], n: int, encoding: str = "deflate"
    ) -> None:
        self._pipe, child = multiprocessing.Pipe()
        self._process = multiprocessing.get_context("fork").Process(
            target=_run, args=(base, auth, counter, n, encoding, child), daemon=True
        )
        self._process.start()
        self.opened: dict = self._pipe.recv()  # once every stream is open (or refused)

    def result(self, acknowledged: list[int]) -> dict:
        """Hand over the acknowledged case ids; what the counting stream received of them."""
        self._pipe.send(acknowledged)
        answer = self._pipe.recv()
        self._process.join(10)
        return answer
