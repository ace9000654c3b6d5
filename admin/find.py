"""Finding a running server: its run directory under ``dir`` and the manifest there."""

from __future__ import annotations

import glob
import json
import os
from typing import Any

from server.control import MANIFEST, ControlError


def server_dir(data_dir: str | None, config_file: str | None) -> tuple[str, int | None]:
    """``dir`` (and port) from --dir, from a config file, or from the built-in config."""
    if data_dir:
        return os.path.abspath(data_dir), None
    from server.config import Config

    config = Config.from_args([config_file] if config_file else [])
    return os.path.abspath(str(config.value("dir"))), int(config.value("port"))


def manifest(data_dir: str, port: int | None) -> dict[str, Any]:
    """The manifest of the server running in ``data_dir`` (the one on ``port``, if given)."""
    pattern = f".atoll-run-{port}" if port else ".atoll-run-*"
    found = []
    for run_dir in sorted(glob.glob(os.path.join(data_dir, pattern))):
        path = os.path.join(run_dir, MANIFEST)
        try:
            with open(path) as f:
                found.append(json.load(f))
        except (OSError, ValueError):
            continue
    if not found:
        where = f"port {port} in {data_dir}" if port else data_dir
        raise ControlError(f"no running Atoll server found for {where} "
                           "(looked for .atoll-run-*/atoll.json; use --dir or --config)")
    if len(found) > 1:
        ports = ", ".join(str(m["port"]) for m in found)
        raise ControlError(f"several servers run in {data_dir} (ports {ports}): pick one with --port")
    result: dict[str, Any] = found[0]
    return result
