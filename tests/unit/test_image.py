"""The offline bench image: which files it holds, from real ldd output saved on this machine."""

from pathlib import Path

from storprof.engine.image import BENCH_DIRS, RootfsPlan, parse_ldd

FIXTURES = Path(__file__).parent.parent / "fixtures" / "ldd"


def test_parse_ldd_takes_every_absolute_library_and_the_loader():
    text = (FIXTURES / "fio.txt").read_text()
    libs = parse_ldd(text)
    expected_lines = [ln for ln in text.splitlines() if "/" in ln]
    assert len(libs) == len(expected_lines)              # vdso has no path and is left out
    assert "/lib64/ld-linux-x86-64.so.2" in libs
    assert any(p.endswith("/libaio.so.1") for p in libs)
    assert all(p.startswith("/") for p in libs)


def test_parse_ldd_of_a_small_binary():
    libs = parse_ldd((FIXTURES / "sleep.txt").read_text())
    assert any(p.endswith("/libc.so.6") for p in libs)


def test_content_hash_changes_with_content(tmp_path):
    a = tmp_path / "a"
    a.write_bytes(b"one")
    plan = RootfsPlan(((str(a), "/bin/a"),))
    first = plan.content_hash()
    assert first == RootfsPlan(((str(a), "/bin/a"),)).content_hash()
    a.write_bytes(b"two")
    assert plan.content_hash() != first
    assert RootfsPlan(((str(a), "/bin/b"),)).content_hash() != plan.content_hash()
    assert "bench/union" in BENCH_DIRS
