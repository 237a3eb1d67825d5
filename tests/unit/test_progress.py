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
