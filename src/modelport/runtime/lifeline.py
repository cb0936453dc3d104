"""Dying with the parent where the platform has no parent-death signal.

The local agent hands each replica the read end of a pipe whose write end only the agent holds
(``--parent_fd``). Nothing is ever written: the read end becomes readable only at end-of-file,
when the agent's last copy of the write end closes, which happens however it dies (SIGKILL
included). The replica then does what Linux's ``PR_SET_PDEATHSIG`` would have done to it: it
kills itself at once (its process group too, when it leads one, so its workers go with it).
There is no drain: the front end that sent its requests lived in the agent and is gone.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal

log = logging.getLogger("modelport.server")


def watch(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    """Kill this process (and the group it leads) when ``fd`` reaches end-of-file."""

    def parent_gone() -> None:
        loop.remove_reader(fd)
        log.warning("The parent process that started this server has gone (end of --parent_fd); exiting")
        pid = os.getpid()
        if os.getpgrp() == pid:
            os.killpg(pid, signal.SIGKILL)
        os.kill(pid, signal.SIGKILL)

    loop.add_reader(fd, parent_gone)
