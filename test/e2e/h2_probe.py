#!/usr/bin/python3
"""Crafted HTTP/2 client: one subcommand per hostile case of issue 11 ("Hostile clients").

Each subcommand opens its own connection(s) to --host:--port (h2c by prior knowledge, or TLS with
ALPN h2 and no certificate check with --tls), does one hostile thing within a hard time limit and
a bounded count, then checks on a fresh connection that another client is still served. It prints
one JSON line saying what the server did and exits 0 when that is what RFC 9113 (and, where it
defers to them, RFC 7541 and RFC 9110) requires for the case, 1 when it is not, 2 on a usage or
connection error (nothing to judge). The expectation of each case is cited beside its check.

Frames are written with hyperframe (raw: the h2 state machine refuses to send what these cases
must send), field blocks with the small HPACK encoder below (literals, no Huffman, names as given,
so that uppercase names and misplaced pseudo-headers go out as crafted); the server's field blocks
are decoded with hpack, the h2 stack's decoder. Python 3 standard library besides.

usage: h2_probe.py CASE --port N [--host 127.0.0.1] [--tls] [--path /x] [--timeout 10] [options]
  (h2_probe.py CASE --help lists a case's options)
"""

import argparse
import collections
import hashlib
import json
import os
import select
import signal
import socket
import ssl
import struct
import sys
import time

import hpack
from h2.errors import ErrorCodes
from hyperframe import frame as hf

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
FRAME_NAMES = {
    0x0: "DATA", 0x1: "HEADERS", 0x2: "PRIORITY", 0x3: "RST_STREAM", 0x4: "SETTINGS",
    0x5: "PUSH_PROMISE", 0x6: "PING", 0x7: "GOAWAY", 0x8: "WINDOW_UPDATE", 0x9: "CONTINUATION",
}
SETTING_NAMES = {
    0x1: "HEADER_TABLE_SIZE", 0x2: "ENABLE_PUSH", 0x3: "MAX_CONCURRENT_STREAMS",
    0x4: "INITIAL_WINDOW_SIZE", 0x5: "MAX_FRAME_SIZE", 0x6: "MAX_HEADER_LIST_SIZE",
    0x8: "ENABLE_CONNECT_PROTOCOL", 0x9: "NO_RFC7540_PRIORITIES",
}
SETTINGS_ACK = hf.SettingsFrame(0, flags=["ACK"]).serialize()
MAX_WINDOW = 2**31 - 1  # RFC 9113 §6.9.1
DEFAULT_WINDOW = 65535  # RFC 9113 §6.9.2
SERVED_CHECK_SECONDS = 2.0  # kept out of the case's own time


class ConnectError(Exception):
    """No HTTP/2 connection to judge (refused, no ALPN h2, no SETTINGS): exit 2."""


class HardTimeout(Exception):
    pass


class ProbeFailure(Exception):
    """The server broke the protocol itself (a frame or field block that cannot be parsed)."""


def error_name(code):
    try:
        return ErrorCodes(code).name
    except ValueError:
        return f"0x{code:x}"


# --- HPACK, the encoding side (RFC 7541) -------------------------------------------------------
def hpack_integer(value, prefix_bits, flags):
    """RFC 7541 §5.1."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([flags | value])
    out = bytearray([flags | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_string(text):
    """RFC 7541 §5.2, without Huffman coding."""
    raw = text.encode("latin-1") if isinstance(text, str) else text
    return hpack_integer(len(raw), 7, 0x00) + raw


def literal(name, value, indexing=False):
    """A field line with a literal name: §6.2.1 (incremental indexing) or §6.2.2 (without)."""
    return (b"\x40" if indexing else b"\x00") + hpack_string(name) + hpack_string(value)


def indexed(index):
    """RFC 7541 §6.1: a reference to the static (1-61) or dynamic (62-) table."""
    return hpack_integer(index, 7, 0x80)


def field_block(fields):
    return b"".join(literal(name, value) for name, value in fields)


def entry_size(name, value):
    """RFC 7541 §4.1."""
    return len(name) + len(value) + 32


# --- the connection -----------------------------------------------------------------------------
class Response:
    def __init__(self):
        self.status = None
        self.headers = {}
        self.body = 0
        self.ended = False
        self.sha256 = None  # set to a hash object to hash the body


class Connection:
    """One HTTP/2 connection, non-blocking, driven by pump(); records what the server sends."""

    def __init__(self, args, deadline, settings=None, rcvbuf=None):
        self.args = args
        self.deadline = deadline
        self.tls = args.tls
        try:
            raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            if rcvbuf:
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            raw.settimeout(max(0.1, min(5.0, deadline - time.monotonic())))
            raw.connect((args.host, args.port))
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.local_port = raw.getsockname()[1]
            self.sock = raw
            if self.tls:
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
                context.set_alpn_protocols(["h2"])
                self.sock = context.wrap_socket(raw, server_hostname=args.host)
                if self.sock.selected_alpn_protocol() != "h2":
                    raise ConnectError(f"ALPN selected {self.sock.selected_alpn_protocol()!r}, not 'h2'")
        except (OSError, ssl.SSLError) as error:
            raise ConnectError(f"cannot connect to {args.host}:{args.port}: {error}") from error
        self.sock.setblocking(False)
        self.out = bytearray()
        self.inbuf = bytearray()
        self.written = 0
        self.last_progress = time.monotonic()
        self.frames = collections.Counter()
        self.server_settings = {}
        self.server_settings_seen = False
        self.settings_acks = 0
        self.ping_acks = 0
        self.ping_ack_payloads = {}  # payload -> count, for the PINGs a case waits for
        self.ping_sequence = None  # expected next counter of flood PING ACKs
        self.ping_out_of_order = 0
        self.goaway = None
        self.resets = {}
        self.responses = collections.defaultdict(Response)
        self.block = None  # (stream, bytearray) while a field block spans CONTINUATIONs
        self.closed = None  # "eof", "reset" or "write-error"
        self.auto_window = True
        self.violations = []
        self.decoder = hpack.Decoder(max_header_list_size=1 << 24)
        initial = {hf.SettingsFrame.ENABLE_PUSH: 0}
        initial.update(settings or {})
        self.queue(PREFACE + hf.SettingsFrame(0, settings=initial).serialize())

    # -- sending --
    def queue(self, data):
        self.out += data

    @property
    def max_frame_size(self):
        return self.server_settings.get("MAX_FRAME_SIZE", 16384)

    def send_headers(self, stream, block, end_stream=True, end_headers=True):
        """HEADERS then CONTINUATIONs as the server's SETTINGS_MAX_FRAME_SIZE needs (§6.10)."""
        size = self.max_frame_size
        pieces = [block[i:i + size] for i in range(0, len(block), size)] or [b""]
        for i, piece in enumerate(pieces):
            flags = []
            if i == len(pieces) - 1 and end_headers:
                flags.append("END_HEADERS")
            if i == 0:
                if end_stream:
                    flags.append("END_STREAM")
                self.queue(hf.HeadersFrame(stream, data=piece, flags=flags).serialize())
            else:
                self.queue(hf.ContinuationFrame(stream, data=piece, flags=flags).serialize())

    def request_block(self, path=None, extra=()):
        return field_block(request_fields(self.args, path) + list(extra))

    def ping(self, payload):
        self.queue(hf.PingFrame(0, opaque_data=payload).serialize())

    # -- state --
    @property
    def ended(self):
        """The server ended the connection: GOAWAY or a closed socket."""
        return self.goaway is not None or self.closed is not None

    def stream_done(self, stream):
        response = self.responses.get(stream)
        return stream in self.resets or (response is not None and response.ended)

    def stalled(self, seconds):
        return bool(self.out) and time.monotonic() - self.last_progress > seconds

    # -- the loop --
    def pump(self, done=lambda: False, until=None, read=True):
        """Writes what is queued, reads and handles frames, until done() holds, until (or the
        deadline) passes or the connection is closed. Returns done()."""
        end = self.deadline if until is None else min(until, self.deadline)
        while True:
            if done():
                return True
            if self.closed or time.monotonic() >= end:
                return done()
            self.step(min(end - time.monotonic(), 0.05), read)

    def step(self, timeout, read=True):
        if read and self.tls and self.sock.pending():
            self.read()
            return
        try:
            readable, writable, _ = select.select(
                [self.sock] if read else [], [self.sock] if self.out else [], [], max(0.0, timeout))
        except ValueError:  # the socket was closed under us
            self.closed = self.closed or "reset"
            return
        if writable:
            self.write()
        if readable:
            self.read()

    def write(self):
        try:
            count = self.sock.send(self.out[:1 << 18])
        except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
            return
        except (OSError, ssl.SSLError):
            self.closed = "write-error"
            self.drain_after_close()
            return
        del self.out[:count]
        self.written += count
        self.last_progress = time.monotonic()

    def drain_after_close(self):
        """After a failed write the GOAWAY that preceded the close may still be readable."""
        end = time.monotonic() + 0.5
        while time.monotonic() < end:
            try:
                data = self.sock.recv(1 << 18)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                if not select.select([self.sock], [], [], 0.05)[0]:
                    return
                continue
            except (OSError, ssl.SSLError):
                return
            if not data:
                return
            self.inbuf += data
            self.parse()

    def read(self):
        try:
            data = self.sock.recv(1 << 18)
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            data = b""
        except (OSError, ssl.SSLError):
            self.closed = "reset"
            return
        if not data:
            self.closed = "eof"
            return
        self.inbuf += data
        self.parse()

    def parse(self):
        buffer = self.inbuf
        offset = 0
        while len(buffer) - offset >= 9:
            length = (buffer[offset] << 16) | (buffer[offset + 1] << 8) | buffer[offset + 2]
            if len(buffer) - offset < 9 + length:
                break
            kind, flags = buffer[offset + 3], buffer[offset + 4]
            if kind == 0x6 and flags & 0x1 and length == 8:  # PING ACK: the floods' fast path
                self.frames["PING"] += 1
                self.on_ping_ack(bytes(buffer[offset + 9:offset + 17]))
            elif kind == 0x4 and flags & 0x1 and length == 0:  # SETTINGS ACK: likewise
                self.frames["SETTINGS"] += 1
                self.settings_acks += 1
            else:
                self.handle_raw(bytes(buffer[offset:offset + 9 + length]))
            offset += 9 + length
        del buffer[:offset]

    def handle_raw(self, raw):
        try:
            frame, _ = hf.Frame.parse_frame_header(memoryview(raw[:9]))
            frame.parse_body(memoryview(raw[9:]))
        except Exception as error:  # hyperframe's errors have no common base
            raise ProbeFailure(f"the server sent a frame that does not parse: {error!r}") from error
        self.frames[FRAME_NAMES.get(raw[3], f"0x{raw[3]:x}")] += 1
        handler = getattr(self, "on_" + type(frame).__name__, None)
        if handler:
            handler(frame)

    def on_ping_ack(self, payload):
        self.ping_acks += 1
        if payload in self.ping_ack_payloads:
            self.ping_ack_payloads[payload] += 1
        elif self.ping_sequence is not None:
            # RFC 9113 §6.7: the ACK carries the PING's payload; the flood's are counters.
            if struct.unpack(">Q", payload)[0] != self.ping_sequence:
                self.ping_out_of_order += 1
            self.ping_sequence += 1

    def on_SettingsFrame(self, frame):
        if "ACK" in frame.flags:
            self.settings_acks += 1
            return
        for key, value in frame.settings.items():
            self.server_settings[SETTING_NAMES.get(key, f"0x{key:x}")] = value
        self.server_settings_seen = True
        self.queue(SETTINGS_ACK)  # RFC 9113 §6.5.3

    def on_PingFrame(self, frame):
        if "ACK" in frame.flags:
            self.on_ping_ack(bytes(frame.opaque_data))
        else:
            self.queue(hf.PingFrame(0, opaque_data=frame.opaque_data, flags=["ACK"]).serialize())

    def on_GoAwayFrame(self, frame):
        self.goaway = {
            "last_stream_id": frame.last_stream_id,
            "error": error_name(frame.error_code),
            "debug": bytes(frame.additional_data[:200]).decode("latin-1"),
        }

    def on_RstStreamFrame(self, frame):
        self.resets[frame.stream_id] = error_name(frame.error_code)

    def on_HeadersFrame(self, frame):
        self.block = (frame.stream_id, bytearray(frame.data), "END_STREAM" in frame.flags)
        if "END_HEADERS" in frame.flags:
            self.finish_block()

    def on_ContinuationFrame(self, frame):
        if self.block is None or self.block[0] != frame.stream_id:
            self.violations.append("CONTINUATION without a field block in progress")
            return
        self.block[1].extend(frame.data)
        if "END_HEADERS" in frame.flags:
            self.finish_block()

    def on_PushPromiseFrame(self, _frame):
        self.violations.append("PUSH_PROMISE although SETTINGS_ENABLE_PUSH is 0 (§8.4)")

    def finish_block(self):
        stream, block, end_stream = self.block
        self.block = None
        try:
            fields = self.decoder.decode(bytes(block))
        except Exception as error:  # hpack's errors have no common base either
            raise ProbeFailure(f"the server's field block does not decode: {error!r}") from error
        response = self.responses[stream]
        headers = dict(fields)
        status = headers.get(":status")
        if status is not None and not status.startswith("1"):
            response.status = int(status)
            response.headers = headers
        if end_stream:
            response.ended = True

    def on_DataFrame(self, frame):
        response = self.responses[frame.stream_id]
        response.body += len(frame.data)
        if response.sha256 is not None:
            response.sha256.update(frame.data)
        if "END_STREAM" in frame.flags:
            response.ended = True
        size = frame.flow_controlled_length
        if self.auto_window and size:
            self.queue(hf.WindowUpdateFrame(0, window_increment=size).serialize())
            if not response.ended:
                self.queue(hf.WindowUpdateFrame(frame.stream_id, window_increment=size).serialize())

    # -- the steps every case shares --
    def wait_settings(self, seconds=3.0):
        """The server's SETTINGS (RFC 9113 §3.4: its preface) and its ACK of ours."""
        if not self.pump(lambda: self.server_settings_seen and self.settings_acks >= 1,
                         until=time.monotonic() + seconds):
            raise ConnectError(f"no SETTINGS exchange with the server ({self.describe_end()})")

    def sync(self, seconds=3.0):
        """A PING whose ACK shows that the server has read everything sent before it."""
        payload = os.urandom(8)
        self.ping_ack_payloads[payload] = 0
        self.ping(payload)
        return self.pump(lambda: self.ping_ack_payloads[payload] > 0 or self.ended,
                         until=time.monotonic() + seconds) and not self.ended

    def describe_end(self):
        if self.goaway:
            return f"GOAWAY {self.goaway['error']}"
        seen = {"eof": "an end of stream", "reset": "a reset", "write-error": "a failed write"}
        return f"closed without GOAWAY, seen as {seen[self.closed]}" if self.closed else "still open"

    def summary(self):
        statuses = collections.Counter(str(r.status) for r in self.responses.values() if r.status)
        resets = collections.Counter(self.resets.values())
        result = {
            "frames": dict(self.frames),
            "server_settings": self.server_settings,
            "goaway": self.goaway,
            "closed": self.closed,
            "resets": dict(resets),
            "statuses": dict(statuses),
        }
        if self.violations:
            result["violations"] = self.violations
        return result

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def request_fields(args, path=None):
    return [
        (":method", "GET"),
        (":scheme", "https" if args.tls else "http"),
        (":authority", f"{args.host}:{args.port}"),
        (":path", path or args.path),
        ("user-agent", "kawipiko-h2-probe"),
    ]


def followup(connection, stream, block=None):
    """A valid GET on the same connection after a case's stream: the connection still works
    (a stream error leaves it usable, RFC 9113 §5.4.2). Its status, or None."""
    if connection.ended:
        return None
    connection.send_headers(stream, block or connection.request_block())
    connection.pump(lambda: connection.stream_done(stream) or connection.ended,
                    until=time.monotonic() + 3)
    response = connection.responses.get(stream)
    return response.status if response and response.ended else None


def verdict(ok, reason, connection=None, **details):
    result = {"pass": bool(ok), "reason": reason}
    result.update(details)
    if connection is not None:
        result.update(connection.summary())
        if connection.violations:
            result["pass"] = False
            result["reason"] += "; the server broke the protocol: " + "; ".join(connection.violations)
    return result


# --- the cases ----------------------------------------------------------------------------------
def case_rapid_reset(args, deadline):
    """CVE-2023-44487. RFC 9113 §10.5: an endpoint MAY treat suspicious activity as a connection
    error ENHANCE_YOUR_CALM; the issue asks that the server do so after a bounded number of
    HEADERS+RST_STREAM pairs (or end the connection, §5.4.1). Pass: the connection ends before
    --count pairs. The pairs go in batches of --batch, each followed by a PING whose ACK is
    awaited, so that "pairs sent before GOAWAY" is exact to a batch."""
    c = Connection(args, deadline)
    c.wait_settings()
    block = c.request_block()
    stream, sent = 1, 0
    while sent < args.count and not c.ended and time.monotonic() < deadline:
        for _ in range(min(args.batch, args.count - sent)):
            c.send_headers(stream, block)
            c.queue(hf.RstStreamFrame(stream, error_code=ErrorCodes.CANCEL).serialize())
            stream += 2
            sent += 1
        c.sync()
    if not c.ended:
        c.pump(lambda: c.ended, until=time.monotonic() + 1)
    details = {"pairs_sent": sent, "count": args.count}
    if c.ended:
        last = c.goaway["last_stream_id"] if c.goaway else None
        details["streams_accepted_by_goaway"] = (last + 1) // 2 if last is not None else None
        return verdict(True, f"connection ended ({c.describe_end()}) after {sent} pairs", c, **details)
    return verdict(False, f"{sent} HEADERS+RST_STREAM pairs and the connection is still open",
                   c, **details)


def case_continuation_flood(args, deadline):
    """CVE-2024-27316 class. RFC 9113 §10.5 (CONTINUATION: implementations SHOULD set limits, MAY
    use ENHANCE_YOUR_CALM) and §10.5.1 (a field block larger than the server will handle): the
    connection must end, since the field block never does (§6.10: no other frame may come between;
    the block must be processed for HPACK state, §4.3). Pass: GOAWAY or close before
    --limit-bytes of field block."""
    c = Connection(args, deadline)
    c.wait_settings()
    size = min(c.max_frame_size, 16384)  # the count of bytes stays fine-grained
    field = literal("x-flood", "f" * 40)
    payload = field * (size // len(field))
    frame = hf.ContinuationFrame(1, data=payload).serialize()
    c.send_headers(1, c.request_block(), end_stream=True, end_headers=False)
    block_bytes, frames = 0, 0
    while block_bytes < args.limit_bytes and not c.ended and time.monotonic() < deadline:
        while len(c.out) < (1 << 20) and block_bytes < args.limit_bytes:
            c.queue(frame)
            block_bytes += len(payload)
            frames += 1
        c.pump(lambda: len(c.out) < (1 << 19) or c.ended or c.stalled(args.stall))
        if c.stalled(args.stall):
            break
    if not c.ended:
        c.pump(lambda: c.ended, until=time.monotonic() + 1)
    details = {"continuation_frames_queued": frames, "bytes_written": c.written,
               "limit_bytes": args.limit_bytes, "stalled": c.stalled(args.stall)}
    if c.ended:
        return verdict(True, f"connection ended ({c.describe_end()}) after {c.written} bytes",
                       c, **details)
    if details["stalled"]:
        return verdict(False, "the server stopped reading but kept the connection open", c, **details)
    return verdict(False, f"{block_bytes} bytes of one field block and the connection is still open",
                   c, **details)


def case_hpack_bomb(args, deadline):
    """One large literal put in the dynamic table (RFC 7541 §6.2.1) and referenced
    --references times (§6.1): a field section of tens of MB from a few kB. RFC 9113 §10.5.1 and
    RFC 7541 §7.3: the server refuses what it will not handle: HTTP 431 (RFC 6585) or another
    4xx, a stream reset, or a connection error; a 2xx/3xx means it took the whole section.
    Then, if the connection is still open, the next request references the same entry: the
    refused block must still have been decoded (RFC 9113 §4.3, else COMPRESSION_ERROR)."""
    c = Connection(args, deadline)
    c.wait_settings()
    table = c.server_settings.get("HEADER_TABLE_SIZE", 4096)
    value = "b" * min(4000, table - entry_size("x-bomb", ""))
    if len(value) < 100:
        return verdict(True, f"the server's dynamic table ({table} bytes) is too small for a bomb", c)
    block = c.request_block() + literal("x-bomb", value, indexing=True) + indexed(62) * args.references
    decoded = (args.references + 1) * entry_size("x-bomb", value)
    c.send_headers(1, block)
    c.pump(lambda: c.stream_done(1) or c.ended, until=time.monotonic() + 5)
    status = c.responses[1].status if 1 in c.responses else None
    again = followup(c, 3, c.request_block() + indexed(62))
    details = {"block_bytes": len(block), "decoded_bytes": decoded, "status": status,
               "reset": c.resets.get(1), "followup_status": again}
    refused = c.ended or 1 in c.resets or (status is not None and 400 <= status < 500)
    if not refused:
        return verdict(False, f"answered {status} to a {decoded}-byte field section", c, **details)
    if not c.ended and again is None:
        return verdict(False, "the connection stayed open but the next request was not answered",
                       c, **details)
    return verdict(True, "refused the field section" + (f" ({c.describe_end()})" if c.ended else ""),
                   c, **details)


def tcp_queues(local_port, remote_port):
    """(tx_queue, rx_queue) of the loopback socket local_port -> remote_port, from
    /proc/net/tcp (both ends of a connection to 127.0.0.1 are listed there), or None."""
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as table:
                next(table)
                for line in table:
                    fields = line.split()
                    if (int(fields[1].rsplit(":", 1)[1], 16) == local_port
                            and int(fields[2].rsplit(":", 1)[1], 16) == remote_port):
                        tx, rx = fields[4].split(":")
                        return int(tx, 16), int(rx, 16)
        except OSError:
            continue
    return None


def server_read_state(c, args):
    """While the flood's ACKs go unread: whether the server is still reading ('stopped' when our
    bytes wait unread in its socket, 'read' when it has read them all, 'ended', or 'unknown' when
    its socket cannot be seen), the flood bytes it has read, and the ACK bytes that the kernel
    holds at both ends (what it owes beyond those is in its own memory)."""
    previous = None
    while time.monotonic() < c.deadline:
        if c.ended:
            return "ended", None, None
        server = tcp_queues(args.port, c.local_port)
        mine = tcp_queues(c.local_port, args.port)
        if server is None or mine is None:
            return "unknown", None, None
        # Over TLS the queues count record bytes, a little more than the frames they carry: the
        # bytes read come out a little low, the ACK bytes held a little high (both err kindly).
        unread = server[1] + mine[0] + len(c.out)
        if unread == 0 or previous == server[1]:
            return "read" if unread == 0 else "stopped", c.written - unread, server[0] + mine[1]
        previous = server[1]
        c.pump(lambda: False, until=time.monotonic() + 0.5, read=False)
    return "unknown", None, None


def flood(args, deadline, kind):
    """SETTINGS or PING frames, --count of them, while nothing the server sends is read (our
    receive buffer made small), then everything is read. RFC 9113 §6.5.3 and §6.7: each one is
    answered by an ACK (PING: the same payload); §10.5: a flood MAY be a connection error
    ENHANCE_YOUR_CALM. What the server read of the flood and what the kernel holds of its ACKs
    (both ends' socket queues, /proc/net/tcp) give the ACK bytes held in its own memory. Fail:
    those exceed --slack (CVE-2019-9512, -9515), or ACKs are missing or out of order. Pass: the
    connection ends; or the server stops reading while its ACKs wait unread (backpressure) or
    read everything with the kernel holding what it owes; then every ACK arrives, in order."""
    c = Connection(args, deadline, rcvbuf=1 << 16)
    c.wait_settings()
    acks_before = c.settings_acks if kind == "settings" else c.ping_acks
    if kind == "settings":
        one = hf.SettingsFrame(0, settings={hf.SettingsFrame.ENABLE_PUSH: 0}).serialize()
        frame_size, ack_size = len(one), 9
    else:
        c.ping_sequence = 0
        frame_size = ack_size = 17
    c.pump(lambda: not c.out)
    flood_start = c.written
    queued = 0
    while queued < args.count and not c.ended and time.monotonic() < deadline:
        while len(c.out) < (1 << 20) and queued < args.count:
            n = min(4096, args.count - queued)
            if kind == "settings":
                c.queue(one * n)
            else:
                c.queue(b"".join(b"\x00\x00\x08\x06\x00\x00\x00\x00\x00" + struct.pack(">Q", i)
                                 for i in range(queued, queued + n)))
            queued += n
        c.pump(lambda: len(c.out) < (1 << 19) or c.ended or c.stalled(args.stall), read=False)
        if c.stalled(args.stall):
            break
    state, consumed, in_kernel = server_read_state(c, args)
    details = {"frames_queued": queued, "count": args.count, "bytes_written": c.written,
               "server_reading": state}
    held = None
    if consumed is not None:
        frames_read = min(queued, max(0, consumed - flood_start) // frame_size)
        held = frames_read * ack_size - in_kernel
        details.update(frames_read_by_server=frames_read, acks_in_kernel_bytes=in_kernel,
                       acks_in_server_memory_bytes=max(0, held))
    def acked():
        return (c.settings_acks if kind == "settings" else c.ping_acks) - acks_before

    c.pump(lambda: acked() >= queued or c.ended)
    details["acks_received"] = acked()
    if kind == "ping":
        details["acks_out_of_order"] = c.ping_out_of_order
    if held is not None and held > args.slack:
        return verdict(False, f"read {details['frames_read_by_server']} frames while about {held}"
                       " bytes of their ACKs were held in its memory", c, **details)
    if c.ended:
        return verdict(True, f"connection ended ({c.describe_end()})", c, **details)
    if acked() != queued or c.ping_out_of_order:
        return verdict(False, f"{acked()} ACKs for {queued} frames (or out of order)", c, **details)
    if state == "unknown":
        raise ConnectError("the server's socket is not in /proc/net/tcp (not local?): nothing to judge")
    how = ("stopped reading while they waited" if state == "stopped"
           else "read the flood, the kernel holding them")
    return verdict(True, f"every frame acknowledged in order; the server {how}", c, **details)


def case_settings_flood(args, deadline):
    """SETTINGS frames without reading their ACKs (see flood)."""
    return flood(args, deadline, "settings")


def case_ping_flood(args, deadline):
    """PING frames without reading their ACKs (see flood)."""
    return flood(args, deadline, "ping")


def rss_anon_kib(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("RssAnon:"):
                    total += int(line.split()[1])
    return total


def case_zero_window(args, deadline):
    """SETTINGS_INITIAL_WINDOW_SIZE 0, then a GET of a large body. RFC 9113 §6.9.1: the server
    sends no flow-controlled DATA beyond the window (none here) and §6.9.2 the window stays 0
    until a WINDOW_UPDATE; nothing lets it reset the stream or end the connection meanwhile (a
    slow reader is no error). Then WINDOW_UPDATEs open both windows: the body arrives whole
    (its content-length, and --expect-file's bytes when given). With --server-pid, the server's
    anonymous memory must not grow by more than --max-growth-kib during the hold (the issue: a
    client that never opens its window holds no more than its window's worth)."""
    c = Connection(args, deadline, settings={hf.SettingsFrame.INITIAL_WINDOW_SIZE: 0})
    c.auto_window = False
    c.wait_settings()
    pids = args.server_pid or []
    before = rss_anon_kib(pids) if pids else None
    response = c.responses[1]
    response.sha256 = hashlib.sha256()
    c.send_headers(1, c.request_block())
    c.pump(lambda: response.body > 0 or c.stream_done(1) or c.ended,
           until=time.monotonic() + args.hold)
    held = {"data_during_hold": response.body, "reset_during_hold": c.resets.get(1),
            "ended_during_hold": c.describe_end() if c.ended else None,
            "status_during_hold": response.status}
    growth = rss_anon_kib(pids) - before if pids else None
    c.queue(hf.WindowUpdateFrame(0, window_increment=MAX_WINDOW - DEFAULT_WINDOW).serialize())
    c.queue(hf.WindowUpdateFrame(1, window_increment=MAX_WINDOW).serialize())
    c.pump(lambda: c.stream_done(1) or c.ended)
    length = response.headers.get("content-length")
    details = dict(held, status=response.status, body_bytes=response.body, content_length=length,
                   rss_anon_growth_kib=growth, body_complete=response.ended)
    expected = None
    if args.expect_file:
        with open(args.expect_file, "rb") as source:
            expected = source.read()
        details["expected_bytes"] = len(expected)
    if held["data_during_hold"] or held["reset_during_hold"] or held["ended_during_hold"]:
        return verdict(False, "the server sent DATA, reset the stream or ended the connection"
                       " while the window was 0", c, **details)
    if growth is not None and growth > args.max_growth_kib:
        return verdict(False, f"the server grew by {growth} KiB while the window was 0", c, **details)
    intact = (response.status == 200 and response.ended and 1 not in c.resets
              and (length is None or int(length) == response.body)
              and (expected is None or response.sha256.digest() == hashlib.sha256(expected).digest()))
    if not intact:
        return verdict(False, "the body did not arrive whole after WINDOW_UPDATE", c, **details)
    return verdict(True, f"held the stream with no DATA for {args.hold} s, then sent"
                   f" {response.body} bytes intact", c, **details)


def case_too_many_streams(args, deadline):
    """More streams at once than the server's SETTINGS_MAX_CONCURRENT_STREAMS. The streams are
    kept open by a zero initial window (--path must have a non-empty body: the responses cannot
    end). RFC 9113 §5.1.2: a HEADERS frame over the limit MUST be a stream error PROTOCOL_ERROR or
    REFUSED_STREAM (§5.4.1: which may also be treated as a connection error). Pass: exactly the
    --extra streams over the limit are reset with one of those codes and those within it are
    served once the window opens; or a connection error with one of those codes. With no limit
    advertised (§6.5.2: unlimited) all of limit-free --extra + 100 streams must be served."""
    c = Connection(args, deadline, settings={hf.SettingsFrame.INITIAL_WINDOW_SIZE: 0})
    c.auto_window = False
    c.wait_settings()
    limit = c.server_settings.get("MAX_CONCURRENT_STREAMS")
    total = (limit if limit is not None and limit <= 1000 else 100) + args.extra
    streams = [1 + 2 * i for i in range(total)]
    block = c.request_block()
    for stream in streams:
        c.send_headers(stream, block)
    c.sync()
    c.pump(lambda: c.ended, until=time.monotonic() + 0.5)  # resets may trail the PING ACK
    within = streams[:limit] if limit is not None and limit <= 1000 else streams
    over = streams[len(within):]
    refused_codes = {"REFUSED_STREAM", "PROTOCOL_ERROR"}
    wrongly_reset = {s: c.resets[s] for s in within if s in c.resets}
    not_refused = [s for s in over if c.resets.get(s) not in refused_codes]
    c.queue(hf.WindowUpdateFrame(0, window_increment=MAX_WINDOW - DEFAULT_WINDOW).serialize())
    for stream in within:
        if stream not in c.resets:
            c.queue(hf.WindowUpdateFrame(stream, window_increment=MAX_WINDOW).serialize())
    c.pump(lambda: all(c.stream_done(s) for s in within) or c.ended)
    served = sum(1 for s in within if s in c.responses and c.responses[s].ended and s not in c.resets)
    details = {"max_concurrent_streams": limit, "streams_opened": total, "over_limit": len(over),
               "over_limit_refused": len(over) - len(not_refused),
               "within_limit_reset": len(wrongly_reset),
               "within_limit_served": served}
    if c.goaway and c.goaway["error"] in refused_codes:
        return verdict(True, f"connection error {c.goaway['error']} for the excess streams",
                       c, **details)
    if c.ended:
        return verdict(False, f"the connection ended otherwise ({c.describe_end()})", c, **details)
    if not_refused or wrongly_reset:
        return verdict(False, f"{len(not_refused)} of {len(over)} streams over the limit not refused,"
                       f" {len(wrongly_reset)} within it reset", c, **details)
    if served != len(within):
        return verdict(False, f"{served} of the {len(within)} streams within the limit served",
                       c, **details)
    return verdict(True, f"refused the {len(over)} streams over {limit}, served the others",
                   c, **details)


def malformed(args, deadline, name, fields, valid=False):
    """One request on a fresh connection. RFC 9113 §8.1.1: a malformed request MUST be a stream
    error PROTOCOL_ERROR (§5.4.1: or a connection error), and the server MAY first answer it (a
    4xx says it was refused). With valid=True (the control), a 2xx/3xx answer is required. The
    connection, if still open, must serve a valid request next (§5.4.2)."""
    c = Connection(args, deadline)
    try:
        c.wait_settings()
        c.send_headers(1, field_block(fields))
        c.pump(lambda: c.stream_done(1) or c.ended, until=time.monotonic() + 3)
        status = c.responses[1].status if 1 in c.responses else None
        reset = c.resets.get(1)
        again = followup(c, 3)
        result = {"name": name, "status": status, "reset": reset, "goaway": c.goaway,
                  "closed": c.closed, "followup_status": again}
        if valid:
            result["pass"] = status is not None and status < 400 and reset in (None, "NO_ERROR")
        else:
            result["pass"] = (reset == "PROTOCOL_ERROR" or (status is not None and 400 <= status < 500)
                              or (c.goaway is not None and c.goaway["error"] == "PROTOCOL_ERROR"))
        if not c.ended and again is None:
            result["pass"] = False
        if c.violations:
            result["pass"], result["violations"] = False, c.violations
        return result
    finally:
        c.close()


def subcases(args, deadline, cases):
    results = []
    for name, fields, *valid in cases:
        results.append(malformed(args, deadline, name, fields, *valid))
    failed = [r["name"] for r in results if not r["pass"]]
    reason = (f"{len(failed)} of {len(results)} failed" if failed
              else "every request treated as RFC 9113 requires")
    return verdict(not failed, reason, cases=results)


def case_bad_pseudo(args, deadline):
    """RFC 9113 §8.3: pseudo-headers other than those defined, or out of their context, and any
    after a regular field, make the request malformed; §8.3.1: exactly one :method, :scheme and
    :path (else malformed)."""
    m, s, a, p, u = request_fields(args)
    return subcases(args, deadline, [
        ("missing :path", [m, s, a, u]),
        ("unknown pseudo-header", [m, s, a, p, (":foo", "bar"), u]),
        ("pseudo-header after a regular field", [m, s, a, u, p]),
        ("duplicate :path", [m, s, a, p, p, u]),
        ("response pseudo-header in a request", [m, s, a, p, (":status", "200"), u]),
    ])


def case_uppercase_name(args, deadline):
    """RFC 9113 §8.2 and §8.2.1: a field name with an uppercase character makes the request
    malformed."""
    return subcases(args, deadline, [
        ("uppercase field name", request_fields(args) + [("X-Probe", "1")]),
    ])


def case_connection_specific(args, deadline):
    """RFC 9113 §8.2.2: connection-specific fields (Connection, Proxy-Connection, Keep-Alive,
    Transfer-Encoding, Upgrade) make a message malformed; TE is allowed with "trailers" only (the
    control: that request must be served)."""
    base = request_fields(args)
    return subcases(args, deadline, [
        ("connection", base + [("connection", "keep-alive")]),
        ("keep-alive", base + [("keep-alive", "timeout=5")]),
        ("proxy-connection", base + [("proxy-connection", "keep-alive")]),
        ("transfer-encoding", base + [("transfer-encoding", "chunked")]),
        ("upgrade", base + [("upgrade", "h2c")]),
        ("te other than trailers", base + [("te", "gzip")]),
        ("te: trailers (allowed)", base + [("te", "trailers")], True),
    ])


def case_get_with_body(args, deadline):
    """DATA on a GET. RFC 9110 §9.3.1: content on a GET has no defined semantics and the server
    may reject it; RFC 9113 has no rule against it. Pass: the stream is answered or reset, no
    connection error, and the connection serves the next request."""
    c = Connection(args, deadline)
    c.wait_settings()
    c.send_headers(1, c.request_block(), end_stream=False)
    c.queue(hf.DataFrame(1, data=b"x" * 16, flags=["END_STREAM"]).serialize())
    c.pump(lambda: c.stream_done(1) or c.ended, until=time.monotonic() + 3)
    status = c.responses[1].status if 1 in c.responses else None
    again = followup(c, 3)
    details = {"status": status, "reset": c.resets.get(1), "followup_status": again}
    if c.ended:
        return verdict(False, f"the connection ended ({c.describe_end()})", c, **details)
    if status is None and 1 not in c.resets:
        return verdict(False, "the stream was neither answered nor reset", c, **details)
    if again is None:
        return verdict(False, "the next request on the connection was not answered", c, **details)
    return verdict(True, "answered or reset the stream; the connection still serves", c, **details)


CASES = {  # name: (function, what it sends)
    "rapid-reset": (case_rapid_reset, "HEADERS then RST_STREAM, in a loop"),
    "continuation-flood": (case_continuation_flood, "HEADERS without END_HEADERS, then CONTINUATIONs"),
    "hpack-bomb": (case_hpack_bomb, "one dynamic-table entry referenced thousands of times"),
    "settings-flood": (case_settings_flood, "SETTINGS frames, their ACKs left unread"),
    "ping-flood": (case_ping_flood, "PING frames, their ACKs left unread"),
    "zero-window": (case_zero_window, "a large GET with a zero window, then WINDOW_UPDATE"),
    "too-many-streams": (case_too_many_streams, "more streams than SETTINGS_MAX_CONCURRENT_STREAMS"),
    "bad-pseudo": (case_bad_pseudo, "missing, unknown, misplaced, repeated pseudo-headers"),
    "uppercase-name": (case_uppercase_name, "a field name with uppercase letters"),
    "connection-specific": (case_connection_specific, "connection, keep-alive, te: gzip, ..."),
    "get-with-body": (case_get_with_body, "DATA on a GET"),
}


def served_afterwards(args):
    """Another client, on a fresh connection, gets an answer to a valid GET of --path."""
    deadline = time.monotonic() + SERVED_CHECK_SECONDS
    try:
        c = Connection(args, deadline)
    except ConnectError:
        return None
    try:
        c.send_headers(1, c.request_block())
        c.pump(lambda: c.stream_done(1) or c.ended)
        response = c.responses.get(1)
        return response.status if response and response.ended else None
    except ProbeFailure:
        return None
    finally:
        c.close()


def parse_arguments():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--host", default="127.0.0.1")
    common.add_argument("--port", type=int, required=True)
    common.add_argument("--tls", action="store_true", help="TLS with ALPN h2 (no certificate check)")
    common.add_argument("--path", default="/", help="the request path (default /)")
    common.add_argument("--timeout", type=float, default=10.0, help="hard time limit, s (default 10)")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    cases = parser.add_subparsers(dest="case", required=True, metavar="CASE")
    for name, (function, summary) in CASES.items():
        doc = flood.__doc__ if name in ("settings-flood", "ping-flood") else function.__doc__
        sub = cases.add_parser(name, parents=[common], help=summary, description=doc)
        if name == "rapid-reset":
            sub.add_argument("--count", type=int, default=5000, help="pairs at most (default 5000)")
            sub.add_argument("--batch", type=int, default=100, help="pairs per PING (default 100)")
        if name == "continuation-flood":
            sub.add_argument("--limit-bytes", type=int, default=16 << 20)
        if name == "hpack-bomb":
            sub.add_argument("--references", type=int, default=10000)
        if name in ("settings-flood", "ping-flood"):
            # A server that reads the whole flood owes 18 MB (SETTINGS) or 17 MB (PING) of ACKs,
            # of which the kernel holds about 4 MB (a socket's send buffer): it then holds 13 MB
            # or more. A bounded buffer (h2o 2.2.5: 1 to 3 MB, whatever the count) passes.
            sub.add_argument("--count", type=int,
                             default=2000000 if name == "settings-flood" else 1000000)
            sub.add_argument("--slack", type=int, default=4 << 20,
                             help="ACK bytes the server may hold in memory (default 4 MiB)")
        if name in ("continuation-flood", "settings-flood", "ping-flood"):
            sub.add_argument("--stall", type=float, default=1.0,
                             help="s without a byte written that count as the server not reading")
        if name == "zero-window":
            sub.add_argument("--hold", type=float, default=2.0, help="s with the window at 0")
            sub.add_argument("--expect-file", help="the file the body must equal")
            sub.add_argument("--server-pid", type=int, action="append",
                             help="the server's process (repeatable): its RssAnon is watched")
            sub.add_argument("--max-growth-kib", type=int, default=1024)
        if name == "too-many-streams":
            sub.add_argument("--extra", type=int, default=10, help="streams over the limit")
    return parser.parse_args()


def on_alarm(_signum, _frame):
    raise HardTimeout()


def main():
    args = parse_arguments()
    start = time.monotonic()
    deadline = start + max(1.0, args.timeout - SERVED_CHECK_SECONDS)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(args.timeout) + 1)
    scheme = "https" if args.tls else "h2c"
    head = {"case": args.case, "target": f"{scheme}://{args.host}:{args.port}{args.path}"}
    try:
        result = CASES[args.case][0](args, deadline)
        served = served_afterwards(args)
    except ConnectError as error:
        print(json.dumps(dict(head, error=str(error))))
        return 2
    except ProbeFailure as error:
        print(json.dumps(dict(head, **{"pass": False, "reason": str(error)})))
        return 1
    except HardTimeout:
        print(json.dumps(dict(head, **{"pass": False, "reason": f"hard timeout ({args.timeout} s)"})))
        return 1
    signal.alarm(0)
    result["served_afterwards"] = served
    if served is None:
        result["pass"] = False
        result["reason"] += "; another client was not served afterwards"
    result["seconds"] = round(time.monotonic() - start, 2)
    print(json.dumps(dict(head, **result)))
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
