"""A data root's space: blocks really allocated, a hard-linked inode counted once, nothing for a
directory this host cannot see."""

from __future__ import annotations

import os

from storprof.host.usage import allocated_bytes


def test_allocated_bytes_counts_blocks_and_each_inode_once(tmp_path):
    (tmp_path / "a").mkdir()
    data = tmp_path / "a" / "data"
    data.write_bytes(b"\xa5" * (1 << 20))
    os.sync()
    once = allocated_bytes(tmp_path)
    expected = sum(os.lstat(p).st_blocks * 512 for p in (tmp_path / "a", data))
    assert once == expected and once >= 1 << 20
    os.link(data, tmp_path / "again")           # the same inode under a second name
    os.symlink("a/data", tmp_path / "link")     # a symlink is its own (tiny) inode, not followed
    assert allocated_bytes(tmp_path) == once + os.lstat(tmp_path / "link").st_blocks * 512


def test_allocated_bytes_is_none_where_there_is_no_directory(tmp_path):
    assert allocated_bytes(None) is None
    assert allocated_bytes(tmp_path / "absent") is None
    (tmp_path / "file").write_text("x")
    assert allocated_bytes(tmp_path / "file") is None
