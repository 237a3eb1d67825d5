"""The work directory a sweep or a net run uses, made if missing and removed again at exit if it
was made here and is still empty."""

from __future__ import annotations

import atexit
from pathlib import Path

from storprof.host import backing


def make_workdir(workdir: Path, on_disk: bool = True) -> Path:
    workdir, made = backing.make_workdir(workdir, on_disk)
    if made:
        atexit.register(lambda: workdir.rmdir() if workdir.is_dir() and not any(workdir.iterdir()) else None)
    return workdir
