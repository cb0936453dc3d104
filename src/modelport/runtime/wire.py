"""Framing of the messages between the front process and its worker processes.

Each message is a 4-byte big-endian length followed by a ``marshal`` payload: both ends are our
own code running the same interpreter, and marshal is the cheapest encoding of tuples of
str/bytes/int/float available in the standard library.
"""

from __future__ import annotations

import marshal
import struct
from typing import Any

_LENGTH = struct.Struct(">I")
HEADER_SIZE = _LENGTH.size

# First element of a worker -> front message.
READY = "ready"
REPLY = "reply"
CLOSED = "closed"  # a handed-over connection ended: the front closes its copy


def encode(message: tuple[Any, ...]) -> bytes:
    """Return ``message`` as one length-prefixed frame."""
    payload = marshal.dumps(message)
    return _LENGTH.pack(len(payload)) + payload


def frame_length(header: bytes) -> int:
    """Return the payload length announced by a frame's 4-byte header."""
    return int(_LENGTH.unpack(header)[0])


def decode(payload: bytes) -> tuple[Any, ...]:
    """Return the message carried by one frame's payload (without its length header)."""
    message = marshal.loads(payload)
    if not isinstance(message, tuple):
        raise ValueError(f"malformed frame: expected a tuple, got {type(message).__name__}")
    return message
