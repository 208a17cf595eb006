"""An on-disk FIFO of batches, for while the broker is away.

Each batch is one file ``<sequence>.json`` (a JSON array of items), written to a
temporary name and renamed, so a crash never leaves half a batch. Sequence
numbers order the files; :meth:`Spool.push_front` uses a number below the head
so a batch that failed to publish keeps its place before younger ones.

One process owns a spool directory at a time (an ``flock`` on ``.lock``); a
second receiver process on the same ``SPOOL_DIR`` takes the next free slot,
and a restarted process replays what its predecessor left.
"""

from __future__ import annotations

import fcntl
import logging
import os
from typing import Any

import orjson

logger = logging.getLogger(__name__)

#: Sequence numbers start here so push_front has room below the head.
_BASE = 10**15


class Spool:
    """A bounded FIFO of batches in a directory.

    Parameters:
      root: The ``SPOOL_DIR``; this spool lives in ``<root>/<name>-<slot>``.
      name: The receiver's name (``syslog``, ``snmptrap``).
      max_bytes: Size beyond which :meth:`push` refuses new batches.
    """

    def __init__(self, root: str, name: str, *, max_bytes: int = 1 << 30) -> None:
        self.max_bytes = max_bytes
        self.path, self._lock = self._claim(root, name)
        self._files = sorted(int(f[:-5]) for f in os.listdir(self.path) if f.endswith(".json") and f[:-5].isdigit())
        self.bytes = sum(os.path.getsize(self._file(seq)) for seq in self._files)
        if self._files:
            logger.warning(
                "Spool %s holds %d batches from an earlier run; they will be replayed.", self.path, len(self._files)
            )

    @staticmethod
    def _claim(root: str, name: str) -> tuple[str, Any]:
        for slot in range(64):
            path = os.path.join(root, f"{name}-{slot}")
            os.makedirs(path, exist_ok=True)
            lock = open(os.path.join(path, ".lock"), "w")  # noqa: SIM115 - held for the process's life
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return path, lock
            except BlockingIOError:
                lock.close()
        raise RuntimeError(f"no free spool slot under {root!r}")

    def _file(self, seq: int) -> str:
        return os.path.join(self.path, f"{seq:020d}.json")

    def __len__(self) -> int:
        return len(self._files)

    def _write(self, seq: int, items: list[dict[str, Any]]) -> None:
        data = orjson.dumps(items)
        tmp = self._file(seq) + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, self._file(seq))
        self.bytes += len(data)

    def push(self, items: list[dict[str, Any]]) -> bool:
        """Append a batch; False when the spool is full (the caller counts the drop)."""
        if self.bytes >= self.max_bytes:
            return False
        seq = self._files[-1] + 1 if self._files else _BASE
        self._write(seq, items)
        self._files.append(seq)
        return True

    def push_front(self, items: list[dict[str, Any]]) -> None:
        """Put a batch before every other one (it is older); never refused, it was already accepted."""
        seq = self._files[0] - 1 if self._files else _BASE
        self._write(seq, items)
        self._files.insert(0, seq)

    def peek(self) -> list[dict[str, Any]] | None:
        """The oldest batch, or None when empty."""
        if not self._files:
            return None
        with open(self._file(self._files[0]), "rb") as f:
            return orjson.loads(f.read())

    def pop(self) -> None:
        """Remove the oldest batch (after it was published)."""
        seq = self._files.pop(0)
        path = self._file(seq)
        self.bytes -= os.path.getsize(path)
        os.unlink(path)
