#!/usr/bin/env python3
"""Start-up time for bench/run-http.sh: starts a server command, polls 127.0.0.1:PORT with a GET
for PATH every 0.5 ms until an answer's status line arrives, prints the time from the spawn to
that answer, then stops the server with SIGTERM (by its PID) and waits for it. The server's PID is
written to PIDFILE at once, so that the calling script can stop it if this program dies.

usage: startup-time.py PIDFILE PORT PATH -- COMMAND...
prints: STARTUP ms=12.3
"""

import signal
import socket
import subprocess
import sys
import time


def answered(port, path):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as connection:
            connection.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            return connection.recv(64).startswith(b"HTTP/1.1 ")
    except OSError:
        return False


def main():
    pidfile, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    command = sys.argv[sys.argv.index("--") + 1 :]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # run the finally below
    started = time.monotonic()
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    try:
        with open(pidfile, "w") as out:
            out.write(f"{server.pid}\n")
        while not answered(port, path):
            if server.poll() is not None:
                sys.exit(f"startup-time: error: '{command[0]}' exited with {server.returncode}")
            if time.monotonic() - started > 30:
                sys.exit("startup-time: error: no answer within 30 s")
            time.sleep(0.0005)
        print(f"STARTUP ms={(time.monotonic() - started) * 1000:.1f}", flush=True)
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            server.wait()


if __name__ == "__main__":
    main()
