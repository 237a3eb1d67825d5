from pathlib import Path

import pytest

from storprof.errors import UserError
from storprof.host.cpu import block_irq_counts, cpu_list, fio_cpus, quiet_cpus

REAL = (Path(__file__).parent.parent / "fixtures" / "interrupts.txt").read_text()

HEADER = "           CPU0       CPU1       CPU2       CPU3\n"


def test_real_interrupts_of_this_vm_put_the_disk_on_cpu1():
    counts = block_irq_counts(REAL)
    assert len(counts) == 2 and counts[0] == 0 and counts[1] > 0
    assert quiet_cpus(REAL) == "0"


def test_every_cpu_without_block_interrupts_is_kept():
    text = HEADER + " 40:  0  0  9000  0  PCI-MSIX  nvme0q1\n 41:  5  5  5  5  PCI-MSIX  eth0-rx\n"
    assert quiet_cpus(text) == "0,1,3"


def test_no_pinning_when_it_cannot_help():
    assert quiet_cpus(HEADER + " 41:  5  5  5  5  PCI-MSIX  eth0-rx\n") is None      # no disk IRQs seen
    assert quiet_cpus("           CPU0\n 40: 100 PCI-MSIX nvme0q1\n") is None          # one CPU
    spread = HEADER + " 40:  100  100  100  100  PCI-MSIX  nvme0q1\n"
    assert quiet_cpus(spread) is None                                                  # evenly spread


def test_choice_parsing(monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(8)))
    assert fio_cpus("none") is None
    assert fio_cpus("0-3,6") == "0-3,6"
    assert cpu_list("0-2,5") == {0, 1, 2, 5}
    with pytest.raises(UserError, match="--cpus"):
        fio_cpus("first")


@pytest.mark.parametrize("choice", ["8", "0-8", "3-1", "99"])
def test_cpus_the_machine_does_not_let_us_use_are_refused(monkeypatch, choice):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(8)))
    with pytest.raises(UserError, match="CPUs 0,1,2,3,4,5,6,7 only"):
        fio_cpus(choice)
