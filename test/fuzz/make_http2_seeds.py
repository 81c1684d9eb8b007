#!/usr/bin/python3
"""Writes the seed corpus of the http2 fuzz target (test/fuzz/corpus/http2/): client frames
after the connection preface (the target adds the preface), made with python3-hyperframe and
python3-hpack. Each seed's first byte is the target's: how the input is cut into reads."""
import os
import sys

from hpack import Encoder
from hyperframe.frame import (ContinuationFrame, DataFrame, GoAwayFrame, HeadersFrame, PingFrame,
                              PriorityFrame, RstStreamFrame, SettingsFrame, WindowUpdateFrame)


def headers(stream, path, extra=(), end_stream=True, encoder=None):
    encoder = encoder or Encoder()
    fields = [(':method', 'GET'), (':scheme', 'https'), (':authority', 'example.com'),
              (':path', path)] + list(extra)
    frame = HeadersFrame(stream, encoder.encode(fields))
    frame.flags.add('END_HEADERS')
    if end_stream:
        frame.flags.add('END_STREAM')
    return frame.serialize()


def settings(initial_window_size=None):
    values = {} if initial_window_size is None else {
        SettingsFrame.INITIAL_WINDOW_SIZE: initial_window_size}
    return SettingsFrame(0, settings=values).serialize()


def seeds():
    enc = Encoder()
    yield 'get', 0, settings() + headers(1, '/index.html', [('accept-encoding', 'gzip, br')],
                                         encoder=enc) + headers(3, '/hello.txt', encoder=enc)
    yield 'ranges-small-reads', 7, settings(initial_window_size=100) + headers(
        1, '/data.bin', [('range', 'bytes=0-9,100-199'), ('if-range', '"x"')])
    yield 'zero-window', 0x80, settings(initial_window_size=0) + headers(1, '/index.html') + \
        WindowUpdateFrame(1, 50).serialize() + WindowUpdateFrame(0, 1000).serialize()
    yield 'reset-ping-goaway', 0, settings() + headers(1, '/') + RstStreamFrame(1, 8).serialize() \
        + PingFrame(0, b'12345678').serialize() + PriorityFrame(3, depends_on=1).serialize() \
        + GoAwayFrame(0, 0, 0).serialize()
    block = Encoder().encode([(':method', 'GET'), (':scheme', 'http'), (':path', '/docs'),
                              (':authority', 'a'), ('if-none-match', '"abc"')])
    first = HeadersFrame(1, block[:5])
    first.flags.add('END_STREAM')
    rest = ContinuationFrame(1, block[5:])
    rest.flags.add('END_HEADERS')
    yield 'continuation', 3, settings() + first.serialize() + rest.serialize()
    body = DataFrame(1, b'unexpected')
    body.flags.add('END_STREAM')
    yield 'get-with-body', 0, settings() + headers(1, '/hello.txt', end_stream=False) + \
        body.serialize()


def main():
    folder = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'corpus', 'http2')
    os.makedirs(folder, exist_ok=True)
    for name, first, frames in seeds():
        with open(os.path.join(folder, name), 'wb') as f:
            f.write(bytes([first]) + frames)
    return 0


if __name__ == '__main__':
    sys.exit(main())
