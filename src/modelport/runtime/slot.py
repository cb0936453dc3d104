"""A few numbers a worker shares with the front process through shared memory, without messages.

Per worker: the id of the handed-over connection whose request is inside ``run()`` (0: none) and
when that ``run()`` started, written by the worker around each call; and how many workers are
ready, written by the front process. The front reads the first two when a worker dies or overruns
its deadline, to answer that request itself; the worker reads the third for ``/health/ready``.
"""

from __future__ import annotations

import mmap
import os
import struct
import tempfile
import time

# Two fields each written by one side only, so neither overwrites the other's.
_BUSY = struct.Struct("<qq")  # busy connection, run() start (monotonic ns): the worker writes
_READY = struct.Struct("<q")  # ready workers: the front process writes
_READY_OFFSET = _BUSY.size
_SIZE = _BUSY.size + _READY.size


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
        """Mark ``run()`` as started for ``connection``."""
        _BUSY.pack_into(self._map, 0, connection, time.monotonic_ns())

    def end(self) -> None:
        """Mark ``run()`` as finished."""
        _BUSY.pack_into(self._map, 0, 0, 0)

    def busy(self) -> tuple[int, int]:
        """``(connection, start in monotonic ns)``; connection 0 when idle."""
        connection, started = _BUSY.unpack_from(self._map, 0)
        return int(connection), int(started)

    @property
    def ready_workers(self) -> int:
        """How many workers of the replica are ready (kept up to date by the front process)."""
        return int(_READY.unpack_from(self._map, _READY_OFFSET)[0])

    def set_ready_workers(self, count: int) -> None:
        """Publish the number of ready workers (front process)."""
        _READY.pack_into(self._map, _READY_OFFSET, count)

    def close(self) -> None:
        """Unmap and close the descriptor."""
        self._map.close()
        os.close(self.fd)
