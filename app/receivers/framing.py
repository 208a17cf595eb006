"""RFC 6587 framing of syslog over a byte stream: octet counting or LF, detected per connection.

Frames longer than ``max_frame`` bytes are cut to ``max_frame`` (the rest of the
frame is skipped, so the stream stays in step) and counted in ``oversize``.
"""

from __future__ import annotations

#: Largest frame kept whole, in bytes (RFC 5425 asks receivers to take at least 2 KiB; we take 64 KiB).
MAX_FRAME = 64 * 1024


class Framer:
    """Turns the bytes of one connection into frames.

    The first byte decides the framing: a digit means octet counting
    (``MSG-LEN SP SYSLOG-MSG``), anything else (usually ``<``) LF-terminated lines.
    """

    def __init__(self, *, max_frame: int = MAX_FRAME) -> None:
        self.max_frame = max_frame
        self.octet_counting: bool | None = None
        self.oversize = 0
        self._buf = bytearray()
        self._skip = 0  # bytes of a cut frame still to be discarded
        self._discarding_line = False

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return the complete frames they finish."""
        if self.octet_counting is None:
            if not data:
                return []
            self.octet_counting = data[:1].isdigit()
        if self._skip:
            cut = min(self._skip, len(data))
            self._skip -= cut
            data = data[cut:]
        self._buf += data
        return self._octets() if self.octet_counting else self._lines()

    def finish(self) -> list[bytes]:
        """The connection closed: a last line without LF is still a frame."""
        if self.octet_counting or not self._buf or self._discarding_line:
            return []
        frame = bytes(self._buf[: self.max_frame]).rstrip(b"\r\x00")
        self._buf.clear()
        return [frame] if frame else []

    def _lines(self) -> list[bytes]:
        frames = []
        start = 0
        buf = self._buf
        while True:
            end = buf.find(b"\n", start)
            if end < 0:
                break
            if self._discarding_line:
                self._discarding_line = False
            else:
                frame = bytes(buf[start:end]).rstrip(b"\r\x00")
                if len(frame) > self.max_frame:
                    frame = frame[: self.max_frame]
                    self.oversize += 1
                if frame:
                    frames.append(frame)
            start = end + 1
        del buf[:start]
        if len(buf) > self.max_frame:
            if not self._discarding_line:
                frames.append(bytes(buf[: self.max_frame]))
                self.oversize += 1
            self._discarding_line = True
            buf.clear()
        return frames

    def _octets(self) -> list[bytes]:
        frames = []
        buf = self._buf
        while buf:
            space = buf.find(b" ", 0, 12)
            if space < 0:
                if len(buf) >= 12 or not buf.isdigit():
                    raise ValueError("octet-counting frame without a valid MSG-LEN")
                break
            head = bytes(buf[:space])
            if not head.isdigit():
                raise ValueError(f"octet-counting frame with MSG-LEN {head[:12]!r}")
            length = int(head)
            if length > self.max_frame:
                available = len(buf) - space - 1
                if available < self.max_frame:
                    break  # wait for the part we keep
                frames.append(bytes(buf[space + 1 : space + 1 + self.max_frame]))
                self.oversize += 1
                taken = min(available, length)
                self._skip = length - taken
                del buf[: space + 1 + taken]
                continue
            if len(buf) - space - 1 < length:
                break
            frames.append(bytes(buf[space + 1 : space + 1 + length]))
            del buf[: space + 1 + length]
        return frames
