"""AWS event-stream framing (``application/vnd.amazon.eventstream``): the encoder.

Reference: shared wire-formats notes, section 3. One message is::

    total_length u32 | headers_length u32 | prelude_crc u32 | headers | payload | message_crc u32

all big-endian; ``prelude_crc`` is the CRC-32 of the first 8 bytes and ``message_crc`` the
CRC-32 of everything before it. Headers are ``name_len u8 | name | type u8 | value``; Bedrock
only uses type 7 (string: ``u16 length | UTF-8``), which is all this encoder writes.
botocore's ``EventStreamBuffer`` decodes what this module writes (tests/test_eventstream.py).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping

STRING_TYPE = 7
PRELUDE_LENGTH = 12  # total_length, headers_length, prelude_crc
MAX_HEADER_NAME = 255
MAX_STRING_VALUE = 0xFFFF


def crc32(data: bytes) -> int:
    """The IEEE/zlib CRC-32 the framing uses."""
    return zlib.crc32(data) & 0xFFFFFFFF


def encode_header(name: str, value: str) -> bytes:
    """One type-7 (string) header."""
    raw_name, raw_value = name.encode(), value.encode()
    if not 0 < len(raw_name) <= MAX_HEADER_NAME:
        raise ValueError(f"header name must be 1-{MAX_HEADER_NAME} bytes: {name!r}")
    if len(raw_value) > MAX_STRING_VALUE:
        raise ValueError(f"header value too long for {name!r}")
    return (struct.pack(">B", len(raw_name)) + raw_name
            + struct.pack(">BH", STRING_TYPE, len(raw_value)) + raw_value)


def encode_headers(headers: Mapping[str, str]) -> bytes:
    """The header block: the headers concatenated, no separators or padding."""
    return b"".join(encode_header(name, value) for name, value in headers.items())


def encode_message(headers: Mapping[str, str], payload: bytes) -> bytes:
    """One complete message (wire-formats §3.5): prelude, prelude CRC, headers, payload, CRC."""
    header_block = encode_headers(headers)
    total = PRELUDE_LENGTH + len(header_block) + len(payload) + 4
    prelude = struct.pack(">II", total, len(header_block))
    head = prelude + struct.pack(">I", crc32(prelude)) + header_block + payload
    return head + struct.pack(">I", crc32(head))


def corrupt_crc(message: bytes) -> bytes:
    """The same message with its trailing message CRC flipped (a ``bad_crc`` fault)."""
    bad = crc32(message[:-4]) ^ 0xFFFFFFFF
    return message[:-4] + struct.pack(">I", bad)
