"""The sweep's progress: a bar on a terminal, one line per cell elsewhere, nothing when quiet."""

import io

from storprof.harness.progress import SweepProgress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_not_a_terminal_prints_one_line_per_finished_cell():
    out = io.StringIO()
    p = SweepProgress(stream=out)
    p.add_total(2)
    p.message("[vfs@ext4] dockerd up")
    p.unit_done("vfs@ext4", "randread-4k union r1", "80,000 IOPS")
    p.close()
    assert out.getvalue().splitlines() == ["[vfs@ext4] dockerd up", "[vfs@ext4] randread-4k union r1: 80,000 IOPS"]


def test_terminal_gets_a_bar_with_counts_current_cell_and_time_left():
    out = Terminal()
    p = SweepProgress(stream=out)
    p.add_total(4)
    p.unit_done("vfs@ext4", "randread-4k union r1", "80,000 IOPS")
    p.message("[vfs@ext4] skipped something")
    p.add_total(-1)
    p.unit_done("vfs@ext4", "randread-4k volume r1", "79,000 IOPS")
    p.close()
    text = out.getvalue()
    assert "2/3" in text and "[vfs@ext4]" in text and "randread-4k volume r1" in text
    assert "<" in text                     # [elapsed<remaining]
    assert "[vfs@ext4] skipped something" in text


def test_quiet_prints_nothing():
    out = Terminal()
    p = SweepProgress("quiet", stream=out)
    p.add_total(1)
    p.message("x")
    p.unit_done("vfs@ext4", "j union r1", "s")
    p.close()
    assert out.getvalue() == ""


class Total:
    """What the bar's total becomes, as add_total moves it."""

    def __init__(self):
        self.total = 0

    def add_total(self, units):
        self.total += units


def test_an_extra_round_is_counted_once_and_a_failed_session_comes_off_the_total():
    from storprof.harness.progress import SessionTally
    bar = Total()
    bar.add_total(6)                       # the sweep plans 6 units for the session
    tally = SessionTally(bar, 6)
    for _ in range(6):
        tally.done()
    tally.more(3)                          # an extra round of 3
    for _ in range(3):
        tally.done()
    tally.close()
    assert bar.total == 9                  # 6 planned + 3 extra, each once
    failed = SessionTally(bar, 4)
    bar.add_total(4)
    failed.done()                          # the session failed after one unit
    failed.close()
    assert bar.total == 10
