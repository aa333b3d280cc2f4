"""AWS event-stream framing (application/vnd.amazon.eventstream) for Bedrock ConverseStream:
prelude (total length, headers length, CRC32), string headers, payload, message CRC32."""

from __future__ import annotations

import struct
import zlib
from typing import Any

from .common import compact, rand

_STRING = 7  # header value type: string


def _headers(headers: dict[str, str]) -> bytes:
    out = bytearray()
    for name, value in headers.items():
        n, v = name.encode(), value.encode()
        out += struct.pack("!B", len(n)) + n + struct.pack("!BH", _STRING, len(v)) + v
    return bytes(out)


def frame(headers: dict[str, str], payload: bytes) -> bytes:
    hdr = _headers(headers)
    total = 12 + len(hdr) + len(payload) + 4
    prelude = struct.pack("!II", total, len(hdr))
    prelude += struct.pack("!I", zlib.crc32(prelude) & 0xFFFFFFFF)
    message = prelude + hdr + payload
    return message + struct.pack("!I", zlib.crc32(message) & 0xFFFFFFFF)


def event(event_type: str, body: dict[str, Any]) -> bytes:
    # Bedrock pads every event payload with a random "p" member; clients must ignore it.
    payload = compact(dict(body, p=rand(8))).encode()
    return frame({":event-type": event_type, ":content-type": "application/json",
                  ":message-type": "event"}, payload)


def exception(exception_type: str, message: str) -> bytes:
    return frame({":exception-type": exception_type, ":content-type": "application/json",
                  ":message-type": "exception"}, compact({"message": message}).encode())


def decode(data: bytes) -> list[tuple[dict[str, str], bytes]]:
    """Parse frames back (for tests), checking both CRCs."""
    out, pos = [], 0
    while pos < len(data):
        total, hlen, pcrc = struct.unpack_from("!III", data, pos)
        assert zlib.crc32(data[pos:pos + 8]) & 0xFFFFFFFF == pcrc, "prelude crc"
        msg = data[pos:pos + total]
        assert zlib.crc32(msg[:-4]) & 0xFFFFFFFF == struct.unpack("!I", msg[-4:])[0], "message crc"
        headers, h = {}, 12
        while h < 12 + hlen:
            n = msg[h]
            name = msg[h + 1:h + 1 + n].decode()
            h += 1 + n
            assert msg[h] == _STRING
            (vlen,) = struct.unpack_from("!H", msg, h + 1)
            headers[name] = msg[h + 3:h + 3 + vlen].decode()
            h += 3 + vlen
        out.append((headers, msg[12 + hlen:-4]))
        pos += total
    return out
