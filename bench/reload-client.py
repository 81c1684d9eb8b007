#!/usr/bin/env python3
"""The checking client of reload-under-load.sh: every response is checked, not only counted.

table <table.tsv> <paths file> <build>=<archive>=<sources> ...
    For each page of the paths file and each build, reads the entry with Debian's `cdb -q` and,
    per variant, the ETag from its header block and the body at its position in the archive file.
    The body is checked against the build's source file (identity: the same bytes; gzip: the
    same once decompressed), so the table says what each build must send, independently of the
    server. Writes "path, coding, etag, build, sha256, length" rows; pages whose entry is not a
    200 in every build (a folder's index.html redirects to the folder) are left out.

run <port> <table.tsv> <connections> <seconds> <seed> <report file>
    <connections> keep-alive connections (raw sockets, asyncio), each asking for pages at random
    (seeded) with "Accept-Encoding: gzip", one at a time, for <seconds>. Each response must be a
    200 with a complete body whose Content-Encoding, ETag, length and SHA-256 are those of one
    build's row for that path; the ETag says which build the response claims, the body must be
    that build's. A connection the server closes after a response that says so is opened again;
    one that fails (reset, closed before a complete response, timeout) counts as an error and is
    opened again. Prints one line,
    "CHECK requests=... errors=... non2xx=... mismatches=... duration_us=... build_<name>=...",
    and writes the first mismatches and errors to <report file>.
"""

import asyncio
import collections
import gzip
import hashlib
import random
import subprocess
import sys
import time

HEAD_SIZE = 6  # "200 2\n"
DESCRIPTOR_SIZE = 45  # one variant line, see lib/archive/schema.hpp
ETAG_PREFIX = len("ETag: ")
REPORT_LIMIT = 50
TIMEOUT_S = 10


def entry_variants(archive_path, archive_bytes, path):
    """(status, [(coding, etag, body)]) of the entry stored under `path`."""
    value = subprocess.run(["cdb", "-q", archive_path, path], capture_output=True, check=True).stdout
    status, count = int(value[0:3]), int(value[4:5])
    blocks = HEAD_SIZE + count * DESCRIPTOR_SIZE
    variants = []
    for i in range(count):
        line = value[HEAD_SIZE + i * DESCRIPTOR_SIZE : HEAD_SIZE + (i + 1) * DESCRIPTOR_SIZE].decode()
        coding = line[0:8].strip()
        position, length = int(line[9:17], 16), int(line[18:26], 16)
        block_length, etag_length = int(line[27:31], 16), int(line[42:44], 16)
        block = value[blocks : blocks + block_length]
        blocks += block_length
        etag = block[ETAG_PREFIX : ETAG_PREFIX + etag_length].decode()
        variants.append((coding, etag, archive_bytes[position : position + length]))
    return status, variants


def make_table(out_path, paths_path, builds):
    with open(paths_path) as f:
        paths = f.read().split()
    rows, kept = [], 0
    for path in paths:
        page_rows = []
        for build in builds:
            name, archive_path, sources = build.split("=")
            status, variants = entry_variants(archive_path, archive_image(archive_path), path)
            if status != 200:
                page_rows = None
                break
            with open(sources + path, "rb") as f:
                source = f.read()
            for coding, etag, body in variants:
                plain = gzip.decompress(body) if coding == "gzip" else body
                if coding not in ("identity", "gzip") or plain != source:
                    sys.exit(f"reload-client.py: {archive_path}: {path} ({coding}) is not {sources}{path}")
                page_rows.append((path, coding, etag, name, hashlib.sha256(body).hexdigest(), len(body)))
        if page_rows:
            rows.extend(page_rows)
            kept += 1
    etags = collections.Counter((row[0], row[1], row[2]) for row in rows)
    if any(n > 1 for n in etags.values()):
        sys.exit("reload-client.py: two builds give one ETag for the same page: they must differ")
    with open(out_path, "w") as f:
        for row in rows:
            print(*row, sep="\t", file=f)
    print(f"TABLE pages={kept} rows={len(rows)}")


_images = {}


def archive_image(archive_path):
    """The whole archive file, read once."""
    if archive_path not in _images:
        with open(archive_path, "rb") as f:
            _images[archive_path] = f.read()
    return _images[archive_path]


class Totals:
    def __init__(self):
        self.requests = self.errors = self.non2xx = self.mismatches = 0
        self.builds = collections.Counter()
        self.report = []

    def note(self, what):
        if len(self.report) < REPORT_LIMIT:
            self.report.append(what)


async def read_response(reader):
    """(status, headers, body) of one response, headers lower-cased."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers, body


def check(totals, table, path, status, headers, body):
    totals.requests += 1
    if status // 100 != 2:
        totals.non2xx += 1
        totals.note(f"non2xx {path} {status}")
        return
    coding = headers.get("content-encoding", "identity")
    claimed = table.get((path, coding, headers.get("etag", "")))
    if claimed is None:
        totals.mismatches += 1
        totals.note(f"mismatch {path} {status} coding={coding} etag={headers.get('etag')}: no build has it")
        return
    build, sha256, length = claimed
    if status != 200 or len(body) != length or hashlib.sha256(body).hexdigest() != sha256:
        totals.mismatches += 1
        totals.note(f"mismatch {path} {status} etag of build {build}, body of {len(body)} bytes"
                    f" (want {length}), sha256 {hashlib.sha256(body).hexdigest()} (want {sha256})")
        return
    totals.builds[build] += 1


async def connection(port, table, paths, rng, deadline, totals):
    while time.monotonic() < deadline:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), TIMEOUT_S)
        except (OSError, asyncio.TimeoutError) as error:
            totals.errors += 1
            totals.note(f"error connect: {error!r}")
            await asyncio.sleep(0.01)
            continue
        try:
            while time.monotonic() < deadline:
                path = rng.choice(paths)
                writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept-Encoding: gzip\r\n\r\n".encode())
                status, headers, body = await asyncio.wait_for(read_response(reader), TIMEOUT_S)
                check(totals, table, path, status, headers, body)
                if headers.get("connection", "").lower() == "close":
                    break  # the server's request cap: a new connection, not an error
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError, IndexError) as error:
            totals.errors += 1
            totals.note(f"error {error!r}")
        finally:
            writer.close()


async def run(port, table_path, connections, seconds, seed, report_path):
    table, paths = {}, set()
    with open(table_path) as f:
        for line in f:
            path, coding, etag, build, sha256, length = line.rstrip("\n").split("\t")
            table[(path, coding, etag)] = (build, sha256, int(length))
            paths.add(path)
    paths = sorted(paths)
    totals = Totals()
    start = time.monotonic()
    deadline = start + seconds
    await asyncio.gather(*(connection(port, table, paths, random.Random(seed * 100003 + i), deadline, totals)
                           for i in range(connections)))
    duration_us = int((time.monotonic() - start) * 1e6)
    with open(report_path, "w") as f:
        print(*totals.report, sep="\n", file=f)
    builds = " ".join(f"build_{name}={n}" for name, n in sorted(totals.builds.items()))
    print(f"CHECK requests={totals.requests} errors={totals.errors} non2xx={totals.non2xx}"
          f" mismatches={totals.mismatches} duration_us={duration_us} {builds}")


def main():
    if len(sys.argv) >= 5 and sys.argv[1] == "table":
        make_table(sys.argv[2], sys.argv[3], sys.argv[4:])
    elif len(sys.argv) == 8 and sys.argv[1] == "run":
        port, table, conns, seconds, seed, report = sys.argv[2:]
        asyncio.run(run(int(port), table, int(conns), float(seconds), int(seed), report))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
