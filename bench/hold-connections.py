#!/usr/bin/env python3
"""Hold test for bench/run-http.sh: opens N keep-alive connections to a server on 127.0.0.1 and
keeps every one of them busy but slow (one GET every INTERVAL seconds, jittered) for DURATION
seconds, while polling the server's memory. Prints one machine-readable line:

  HOLD connections=10000 open_min=10000 requests=... errors=... non2xx=... connect_s=...
       rss_max_kib=... hwm_kib=... anon_max_kib=...

errors counts failed connects, connections closed or reset by the server before the end, and
responses that could not be parsed; non2xx counts answers whose status is not 2xx. rss_max_kib is
the largest sum of VmRSS over the server PIDs seen while polling (every 0.2 s); hwm_kib the sum of
their VmHWM at the end (peak RSS); anon_max_kib the largest sum of RssAnon (the servers' own
memory: VmRSS also counts the pages of files they map, such as kawipiko's archive, which are the
page cache's and shared). The client itself needs a descriptor limit above N.

usage: hold-connections.py PORT PATH CONNECTIONS DURATION INTERVAL SERVER_PID...
"""

import asyncio
import random
import sys
import time


def memory_kib(pids, field):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as status:
                for line in status:
                    if line.startswith(field + ":"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


class Stats:
    def __init__(self):
        self.requests = 0
        self.errors = 0
        self.non2xx = 0
        self.open = 0


class Client(asyncio.Protocol):
    """One keep-alive connection: request, read the whole answer, wait, request again."""

    def __init__(self, request, interval, deadline, stats, loop):
        self.request = request
        self.interval = interval
        self.deadline = deadline
        self.stats = stats
        self.loop = loop
        self.buffer = bytearray()
        self.expected = None  # header + body length of the answer being read
        self.transport = None
        self.finished = False

    def connection_made(self, transport):
        self.transport = transport
        self.stats.open += 1
        # Spread the first requests over one interval so that they do not all arrive together.
        self.loop.call_later(random.uniform(0, self.interval), self.send)

    def send(self):
        if self.finished:
            return
        if time.monotonic() >= self.deadline:
            self.finish()
            return
        self.transport.write(self.request)

    def data_received(self, data):
        self.buffer += data
        while True:
            if self.expected is None:
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
                parts = head[0].split(" ")
                length = None
                for line in head[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value.strip())
                if len(parts) < 2 or not parts[1].isdigit() or length is None:
                    self.stats.errors += 1
                    self.finish()
                    return
                if not parts[1].startswith("2"):
                    self.stats.non2xx += 1
                self.expected = end + 4 + length
            if len(self.buffer) < self.expected:
                return
            del self.buffer[: self.expected]
            self.expected = None
            self.stats.requests += 1
            self.loop.call_later(self.interval * random.uniform(0.5, 1.5), self.send)

    def connection_lost(self, exc):
        self.stats.open -= 1
        if not self.finished:
            self.finished = True
            self.stats.errors += 1

    def finish(self):
        if not self.finished and self.transport is not None:
            self.finished = True
            self.transport.close()


async def main():
    port, path = int(sys.argv[1]), sys.argv[2]
    connections, duration, interval = int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
    pids = [int(pid) for pid in sys.argv[6:]]
    loop = asyncio.get_running_loop()
    stats = Stats()
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    random.seed(1)

    rss_max = 0
    anon_max = 0
    # Connect at most 256 at a time: a burst of 10,000 SYNs overflows any listen backlog and
    # measures SYN retries instead of the server.
    started = time.monotonic()
    deadline = started + 3600  # replaced once every connection is open
    clients = []
    gate = asyncio.Semaphore(256)

    async def connect():
        async with gate:
            try:
                client = Client(request, interval, deadline, stats, loop)
                clients.append(client)
                await loop.create_connection(lambda: client, "127.0.0.1", port)
            except OSError:
                stats.errors += 1

    await asyncio.gather(*(connect() for _ in range(connections)))
    connect_s = time.monotonic() - started
    deadline = time.monotonic() + duration
    for client in clients:
        client.deadline = deadline
    open_min = stats.open
    while time.monotonic() < deadline - 0.2:  # the clients start closing at the deadline
        await asyncio.sleep(0.2)
        rss_max = max(rss_max, memory_kib(pids, "VmRSS"))
        anon_max = max(anon_max, memory_kib(pids, "RssAnon"))
        open_min = min(open_min, stats.open)
    hwm = memory_kib(pids, "VmHWM")
    for client in clients:
        client.finish()
    await asyncio.sleep(0.5)
    print(
        f"HOLD connections={connections} open_min={open_min} requests={stats.requests}"
        f" errors={stats.errors} non2xx={stats.non2xx} connect_s={connect_s:.2f}"
        f" rss_max_kib={rss_max} hwm_kib={hwm} anon_max_kib={anon_max}",
        flush=True,
    )


if __name__ == "__main__":
    asyncio.run(main())
