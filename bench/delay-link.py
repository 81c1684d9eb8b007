#!/usr/bin/env python3
"""A network link with delay and an optional bandwidth, between two TUN devices, for
bench/tls-ttfb.sh: what `tc qdisc ... netem delay D rate R` does, for kernels built without
sch_netem. Not a test.

Makes the TUN devices <a> and <b> (IP packets, no extra header) and prints "ready"; the caller
then moves each into its network namespace and gives it an address (the devices live as long as
this process). A packet read from one device is written to the other <delay> ms later. With
<mbit>, each direction is a link of that rate: a packet leaves once the ones before it have
(its size at the rate), then takes the delay; at most <limit> packets wait per direction, as in
netem (1,000 by default), the others are dropped. Runs until SIGTERM or SIGINT.

Usage: delay-link.py <a> <b> <delay ms> [<mbit> [<limit>]]
"""

import collections
import errno
import fcntl
import os
import select
import signal
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000


def open_tun(name):
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


class direction:
    """One way through the link: packets read from `source`, written to `target`."""

    def __init__(self, source, target, delay, bytes_per_second, limit):
        self.source, self.target = source, target
        self.delay, self.bytes_per_second, self.limit = delay, bytes_per_second, limit
        self.queue = collections.deque()  # (time to deliver, packet), in order of delivery
        self.link_free = 0.0  # when the last packet taken has left, at the given rate
        self.dropped = 0

    def take(self, now):
        """Reads what waits on the source; False once the device is gone."""
        while True:
            try:
                packet = os.read(self.source, 65536)
            except BlockingIOError:
                return True
            except OSError as error:  # the device went with its namespace
                if error.errno == errno.EBADFD:
                    return False
                raise
            if len(self.queue) >= self.limit:
                self.dropped += 1
                continue
            leaves = now
            if self.bytes_per_second:
                self.link_free = max(now, self.link_free) + len(packet) / self.bytes_per_second
                leaves = self.link_free
            self.queue.append((leaves + self.delay, packet))

    def deliver(self, now):
        while self.queue and self.queue[0][0] <= now:
            _, packet = self.queue.popleft()
            try:
                os.write(self.target, packet)
            except OSError as error:  # a full device queue or a device gone down: dropped
                if error.errno not in (errno.EAGAIN, errno.EIO, errno.ENOBUFS):
                    raise
                self.dropped += 1

    def next_time(self):
        return self.queue[0][0] if self.queue else None


def main():
    if len(sys.argv) not in (4, 5, 6):
        sys.exit(__doc__.split("\n\n")[-1])
    name_a, name_b, delay_ms = sys.argv[1], sys.argv[2], float(sys.argv[3])
    rate = float(sys.argv[4]) * 1e6 / 8 if len(sys.argv) > 4 else 0.0
    limit = int(sys.argv[5]) if len(sys.argv) > 5 else 1000
    fd_a, fd_b = open_tun(name_a), open_tun(name_b)
    ways = {
        fd_a: direction(fd_a, fd_b, delay_ms / 1000, rate, limit),
        fd_b: direction(fd_b, fd_a, delay_ms / 1000, rate, limit),
    }
    stopping = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.append(True))
    poller = select.epoll()
    for fd in ways:
        poller.register(fd, select.EPOLLIN)
    print("ready", flush=True)
    while not stopping:
        now = time.monotonic()
        for way in ways.values():
            way.deliver(now)
        times = [t for t in (way.next_time() for way in ways.values()) if t is not None]
        timeout = max(0.0, min(times) - time.monotonic()) if times else 1.0
        try:
            events = poller.poll(timeout)
        except InterruptedError:
            continue
        now = time.monotonic()
        for fd, _ in events:
            if not ways[fd].take(now):
                stopping.append(True)
    dropped = sum(way.dropped for way in ways.values())
    print(f"delay-link: {dropped} packets dropped", file=sys.stderr)


if __name__ == "__main__":
    main()
