"""What a server does when ``accept()`` fails, for the accept loops sanschat runs.

A listening socket stays readable while the process is out of descriptors
(EMFILE, ENFILE) or kernel memory (ENOBUFS, ENOMEM): the client waits in the
backlog, so a loop that retries at once spins, and one that logs each failure
writes thousands of lines a second. The policy kept here: stop accepting for
``ACCEPT_BACKOFF`` seconds and try again, and log an episode of failures twice
(when it starts, and when an accept succeeds again), never each failure.
"""

from __future__ import annotations

import logging
import time

from ._driver import ACCEPT_BACKOFF

__all__ = ["AcceptFailures"]


class AcceptFailures:
    """The failed accepts of one listening socket, counted by episode."""

    def __init__(self, log: logging.Logger, address: object) -> None:
        self._log = log
        self._address = address
        self._failures = 0
        self._since = 0.0

    def failed(self, error: OSError) -> float:
        """``accept()`` raised ``error``: the seconds to stop accepting. Logged
        when it starts an episode."""
        if not self._failures:
            self._since = time.monotonic()
            self._log.warning(
                "accept failed on %s: %s; retrying every %.1f s until it succeeds",
                self._address,
                error,
                ACCEPT_BACKOFF,
            )
        self._failures += 1
        return ACCEPT_BACKOFF

    def accepted(self) -> None:
        """``accept()`` succeeded: the episode of failures, if any, is over."""
        if self._failures:  # (the common case costs this one test)
            self._log.info(
                "accepting again on %s after %.1f s of failures (tries: %d)",
                self._address,
                time.monotonic() - self._since,
                self._failures,
            )
            self._failures = 0
