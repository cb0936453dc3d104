"""A few numbers a worker shares with the front process through shared memory, without messages.

Per worker: the id of the handed-over connection whose request is inside ``run()`` (0: none) and
when that ``run()`` started, written by the worker around each call; how many workers are
ready, and whether the server is draining, written by the front process. The front reads the
first two when a worker dies or overruns its deadline, to answer that request itself; the worker
reads the third for ``/health/ready``, and the fourth when a ``run()`` returns: a stop that began
while it ran (its signal waits for the event loop) still gets that answer ``Connection: close``.
"""

from __future__ import annotations

import mmap
import os
import struct
import tempfile
import time

# Fields each written by one side only, so neither overwrites the other's; every field is one
# aligned 8-byte word, written and read whole. The worker writes the busy connection and when its
# run() started; the front process writes the ready count and the draining flag.
_WORD = struct.Struct("<q")
_CONNECTION_OFFSET, _STARTED_OFFSET, _READY_OFFSET, _DRAINING_OFFSET = 0, 8, 16, 24
_SIZE = 32


class Slot:
    """One worker's shared numbers, backed by a file descriptor both processes map."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._map = mmap.mmap(fd, _SIZE)

    @classmethod
    def create(cls) -> Slot:
        """A new zeroed slot (in the front process; the fd is passed to the worker).

        Backed by an unlinked temporary file rather than ``memfd_create``, which macOS lacks.
        """
        with tempfile.TemporaryFile(prefix="modelport-slot-") as backing:
            fd = os.dup(backing.fileno())
        os.ftruncate(fd, _SIZE)
        return cls(fd)

    def begin(self, connection: int) -> None:
        """Mark ``run()`` as started for ``connection``.

        The start time goes first and the connection last, so that a reader that sees the new
        connection also finds its start time (readers read in the opposite order); the reader
        still confirms an overrun on a second look, since weaker memory models may reorder.
        """
        _WORD.pack_into(self._map, _STARTED_OFFSET, time.monotonic_ns())
        _WORD.pack_into(self._map, _CONNECTION_OFFSET, connection)

    def end(self) -> None:
        """Mark ``run()`` as finished (the start time stays; it means nothing without a connection)."""
        _WORD.pack_into(self._map, _CONNECTION_OFFSET, 0)

    def busy(self) -> tuple[int, int]:
        """``(connection, start in monotonic ns)``; connection 0 when idle."""
        connection = _WORD.unpack_from(self._map, _CONNECTION_OFFSET)[0]
        started = _WORD.unpack_from(self._map, _STARTED_OFFSET)[0]
        return int(connection), int(started)

    @property
    def ready_workers(self) -> int:
        """How many workers of the replica are ready (kept up to date by the front process)."""
        return int(_WORD.unpack_from(self._map, _READY_OFFSET)[0])

    def set_ready_workers(self, count: int) -> None:
        """Publish the number of ready workers (front process)."""
        _WORD.pack_into(self._map, _READY_OFFSET, count)

    @property
    def draining(self) -> bool:
        """Whether the front process has begun a graceful stop."""
        return bool(_WORD.unpack_from(self._map, _DRAINING_OFFSET)[0])

    def set_draining(self) -> None:
        """Announce a graceful stop (front process)."""
        _WORD.pack_into(self._map, _DRAINING_OFFSET, 1)

    def close(self) -> None:
        """Unmap and close the descriptor."""
        self._map.close()
        os.close(self.fd)
