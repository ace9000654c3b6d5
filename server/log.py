"""Logging in Redis' line shape: ``PID:ROLE DD Mon YYYY HH:MM:SS.mmm * message``.

Roles: ``M`` the supervisor, ``G`` a gateway, ``S`` a shard actor.  Level marks as Redis:
``.`` debug, ``-`` verbose, ``*`` notice, ``#`` warning.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

_MARKS = {logging.DEBUG: ".", 15: "-", logging.INFO: "*", logging.WARNING: "#", logging.ERROR: "#",
          logging.CRITICAL: "#"}
_LEVELS = {"debug": logging.DEBUG, "verbose": 15, "notice": logging.INFO, "warning": logging.WARNING,
           "nothing": logging.CRITICAL + 10}


class RedisFormatter(logging.Formatter):
    def __init__(self, role: str) -> None:
        super().__init__()
        self.role = role

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%d %b %Y %H:%M:%S", time.localtime(record.created))
        millis = int(record.msecs)
        mark = _MARKS.get(record.levelno, "*")
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return f"{os.getpid()}:{self.role} {stamp}.{millis:03d} {mark} {text}"


def setup_logging(config: dict[str, Any], role: str) -> None:
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    logfile = str(config.get("logfile", "") or "")
    handler: logging.Handler = (
        logging.FileHandler(logfile) if logfile else logging.StreamHandler(sys.stdout)
    )
    handler.setFormatter(RedisFormatter(role))
    root.addHandler(handler)
    root.setLevel(_LEVELS.get(str(config.get("loglevel", "notice")), logging.INFO))
