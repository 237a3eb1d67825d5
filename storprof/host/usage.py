"""Disk space a directory really holds: what a data root costs, measured one way for every workload."""

from __future__ import annotations

import os
from pathlib import Path

from storprof.host.mounts import host_fs_type, mounts_below


def allocated_bytes(root: Path | None) -> int | None:
    """Blocks allocated under a data root (st_blocks, each inode once), not descending into the
    mounts of another filesystem in it (a running container's overlay or FUSE view); a
    graphdriver's bind mount of its own directory (btrfs) is the same filesystem and is walked.
    None where this host cannot see it."""
    if root is None or not root.is_dir():
        return None
    top = str(root.resolve())
    own = host_fs_type(root)
    skip = {m.mount_point for m in mounts_below(root) if m.fs_type != own}
    seen, total = set(), 0
    for where, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if os.path.join(where, d) not in skip]
        for name in dirs + files:
            try:
                st = os.lstat(os.path.join(where, name))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total
