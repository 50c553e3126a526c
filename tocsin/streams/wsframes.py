"""RFC 6455 frames for parked WebSocket sockets (``wspark.py``): the client's frames
parsed, the server's few control frames built.

Why not the websockets library's sans-I/O parser, which uvicorn runs until a socket is
parked: its ``ServerProtocol`` holds a parser generator, a stream reader and their
state per socket (~5 KB of an idle socket, tracemalloc); the state a server needs
between two client frames is a bytes buffer and, inside a fragmented message, its
parts. The checks are the ones websockets makes, with the same close codes: 1002 for a
protocol error (reserved bits, an unmasked frame, an unknown opcode, a fragmented or
long control frame, a continuation out of place, a bad close payload), 1009 for a
message over the limit (decided on the frame's header, before its payload is held),
1007 for text that is not UTF-8. The mask is removed by websockets' C ``apply_mask``.
"""

from __future__ import annotations

from websockets.frames import EXTERNAL_CLOSE_CODES

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - websockets built without its C extension
    from websockets.utils import apply_mask

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10

NO_STATUS = 1005
"""The code a close frame without a payload stands for (never sent, RFC 6455 7.4.1)."""


class FrameError(Exception):
    """The client broke the protocol: close the socket with ``code``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


class FrameReader:
    """One socket's incoming frames: :meth:`feed` bytes, then :meth:`next` until it
    returns ``None`` (more bytes needed). Data frames come out as whole messages (their
    fragments joined, text checked as UTF-8); control frames as they arrive, between a
    message's fragments included."""

    __slots__ = ("buf", "kind", "max_size", "parts", "size")

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self.buf = b""
        """Received, not parsed yet: at most one socket read beyond the frame being
        parsed, since the protocol stops reading while a message is handled."""
        self.kind = 0
        """The opcode of the fragmented message in progress (0: none)."""
        self.parts: list[bytes] = []
        self.size = 0
        """Bytes of that message so far (``max_size`` bounds it)."""

    def feed(self, data: bytes) -> None:
        self.buf = self.buf + data if self.buf else data

    def next(self) -> tuple[int, bytes | str] | None:
        """The next message or control frame as ``(opcode, payload)``: ``str`` for a text
        message, ``bytes`` otherwise. Raises :class:`FrameError`."""
        while True:
            buf = self.buf
            n = len(buf)
            if n < 2:
                return None
            b0, b1 = buf[0], buf[1]
            if b0 & 0x70:
                raise FrameError(1002, "reserved bits must be 0")
            if not b1 & 0x80:
                raise FrameError(1002, "incorrect masking")
            op, fin, length, at = b0 & 0x0F, b0 & 0x80, b1 & 0x7F, 2
            if length == 126:
                if n < 4:
                    return None
                length, at = int.from_bytes(buf[2:4], "big"), 4
            elif length == 127:
                if n < 10:
                    return None
                length, at = int.from_bytes(buf[2:10], "big"), 10
                if length >> 63:
                    raise FrameError(1002, "invalid frame length")
            if op >= OP_CLOSE:
                if op > OP_PONG:
                    raise FrameError(1002, f"invalid opcode: {op}")
                if not fin:
                    raise FrameError(1002, "fragmented control frame")
                if length > 125:
                    raise FrameError(1002, "control frame too long")
            elif op > OP_BINARY:
                raise FrameError(1002, f"invalid opcode: {op}")
            elif op == OP_CONT and not self.kind:
                raise FrameError(1002, "unexpected continuation frame")
            elif op != OP_CONT and self.kind:
                raise FrameError(1002, "expected a continuation frame")
            elif self.size + length > self.max_size:
                # on the header alone: the payload is never held
                raise FrameError(1009, f"message over {self.max_size} bytes")
            end = at + 4 + length
            if n < end:
                return None
            payload = apply_mask(buf[at + 4 : end], buf[at : at + 4]) if length else b""
            self.buf = buf[end:] if n > end else b""
            if op >= OP_CLOSE:
                return op, payload
            if not fin:
                if op != OP_CONT:
                    self.kind = op
                self.parts.append(payload)
                self.size += length
                continue
            if op == OP_CONT:
                self.parts.append(payload)
                op, payload = self.kind, b"".join(self.parts)
                self.kind, self.parts, self.size = 0, [], 0
            if op == OP_TEXT:
                try:
                    return op, payload.decode()
                except UnicodeDecodeError:
                    raise FrameError(1007, "invalid UTF-8 in a text message") from None
            return op, payload


def parse_close(payload: bytes) -> int:
    """The code of a client's close frame (``NO_STATUS`` when it has none); raises
    :class:`FrameError` for a code no endpoint may send, or a reason not UTF-8."""
    if not payload:
        return NO_STATUS
    if len(payload) < 2:
        raise FrameError(1002, "close frame too short")
    code = int.from_bytes(payload[:2], "big")
    if code not in EXTERNAL_CLOSE_CODES and not 3000 <= code < 5000:
        raise FrameError(1002, f"invalid close code {code}")
    try:
        payload[2:].decode()
    except UnicodeDecodeError:
        raise FrameError(1007, "invalid UTF-8 in the close reason") from None
    return code


def control_frame(op: int, payload: bytes) -> bytes:
    """A server's control frame (unmasked, at most 125 bytes of payload)."""
    return bytes((0x80 | op, len(payload))) + payload


def close_frame(code: int, reason: str = "") -> bytes:
    """A close frame; the reason cut to fit a control frame, on a character boundary."""
    data = reason.encode()[:123].decode(errors="ignore").encode()
    return control_frame(OP_CLOSE, code.to_bytes(2, "big") + data)
