"""Which CPUs fio runs on: away from the CPUs that take the disk's interrupts.

fio sharing a CPU with the disk's interrupt handling gives bimodal results (docs/findings.md);
every placement runs under the same pinning, so ratios stay fair.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from storprof.errors import UserError

# Interrupt names of block-device queues: virtio-blk request queues, NVMe, AHCI/ATA, common SCSI HBAs.
BLOCK_IRQ = re.compile(r"virtio\d+-req|nvme\d+q\d+|ahci|ata_piix|pata|mpt\dsas|megasas|vmw_pvscsi|hv_storvsc"
                       r"|xen-blkfront")


def block_irq_counts(interrupts_text: str) -> list[int]:
    """Pure: per CPU, how many block-device interrupts /proc/interrupts shows."""
    lines = interrupts_text.splitlines()
    if not lines:
        return []
    ncpu = len(lines[0].split())
    counts = [0] * ncpu
    for line in lines[1:]:
        if not BLOCK_IRQ.search(line):
            continue
        fields = line.split()[1:1 + ncpu]
        for i, f in enumerate(fields):
            if f.isdigit():
                counts[i] += int(f)
    return counts


def quiet_cpus(interrupts_text: str) -> str | None:
    """fio's cpus_allowed: every CPU without block interrupts, or None when that cannot help
    (one CPU, no block interrupts seen, or every CPU takes them)."""
    counts = block_irq_counts(interrupts_text)
    if len(counts) < 2 or not any(counts):
        return None
    quiet = [i for i, c in enumerate(counts) if c == 0]
    if not quiet:
        least = min(counts)
        if least > 0.1 * max(counts):
            return None
        quiet = [i for i, c in enumerate(counts) if c == least]
    return ",".join(str(i) for i in quiet)


def fio_cpus(choice: str) -> str | None:
    """`auto` (CPUs away from the disk's interrupts), `none` (no pinning), or a cpus_allowed list."""
    if choice == "none":
        return None
    if choice == "auto":
        try:
            return quiet_cpus(Path("/proc/interrupts").read_text())
        except OSError:
            return None
    if not re.fullmatch(r"\d+(-\d+)?(,\d+(-\d+)?)*", choice):
        raise UserError(f"--cpus takes auto, none or a CPU list such as 0 or 0-3,6; got {choice!r}")
    usable = os.sched_getaffinity(0)
    asked = cpu_list(choice)
    if not asked or not asked <= usable:
        raise UserError(f"--cpus {choice}: this machine lets storprof run on CPUs "
                        f"{','.join(map(str, sorted(usable)))} only")
    return choice


def cpu_list(text: str) -> set[int]:
    """'0-2,5' -> {0, 1, 2, 5}."""
    cpus: set[int] = set()
    for part in text.split(","):
        low, _, high = part.partition("-")
        cpus.update(range(int(low), int(high or low) + 1))
    return cpus
