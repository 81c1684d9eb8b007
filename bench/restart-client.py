#!/usr/bin/env python3
"""The client of restart-without-activation.sh: counts what restarts cost connection attempts.

restart-client.py <port> <threads> <seconds>
    <threads> threads, each asking 127.0.0.1:<port> for / over and over for <seconds>, every
    request on a new connection ("Connection: close"; each one is a connection attempt, what a
    restart can lose) and read to the end. A request is answered when a complete "200" response
    comes; otherwise it fails, by kind: refused (nothing listens: ECONNREFUSED), reset (ECONNRESET
    at any step: an accept queue thrown away), closed (the end of the stream before a complete
    response), timeout (5 s without progress), other. Prints one line,
    "RESTART answered=... refused=... reset=... closed=... timeout=... other=...".
"""

import collections
import errno
import socket
import sys
import threading
import time

TIMEOUT_S = 5
REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"


def ask(port):
    """One request on a new connection: "answered" or the kind of failure."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as s:
            s.sendall(REQUEST)
            response = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                response += chunk
    except ConnectionRefusedError:
        return "refused"
    except ConnectionResetError:
        return "reset"
    except (socket.timeout, TimeoutError):
        return "timeout"
    except OSError as e:
        return "reset" if e.errno == errno.ECONNRESET else "other"
    head, _, body = response.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200 "):
        return "closed"
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and int(value) != len(body):
            return "closed"
    return "answered"


def main():
    port, threads, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    deadline = time.monotonic() + seconds
    counts = collections.Counter()
    lock = threading.Lock()

    def run():
        mine = collections.Counter()
        while time.monotonic() < deadline:
            mine[ask(port)] += 1
        with lock:
            counts.update(mine)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    kinds = ["answered", "refused", "reset", "closed", "timeout", "other"]
    print("RESTART " + " ".join(f"{k}={counts[k]}" for k in kinds), flush=True)


if __name__ == "__main__":
    main()
