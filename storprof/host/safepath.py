"""Paths root may write, mount or delete below, and files made or read there without being steered.

storprof runs as root on hosts other users share. A directory another user can write is one they
can fill with symlinks, swap for one of their own between a check and a use, or plant records and
data roots in. So before root makes anything below a path, every component of it is checked: a
directory (or a symlink made by a trusted user, whose target is checked the same way) owned by
root or the invoking user, and not writable by group or others. Below such a path only trusted
users can create names, so what root makes there stays what it made.

Files are then made with O_CREAT|O_EXCL|O_NOFOLLOW (a name that exists is never reused), replaced
by writing a new file beside them and os.replace() (which replaces a symlink, never follows it),
and read with O_NOFOLLOW from a regular file whose size is capped.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from storprof.errors import UserError

# Symlinks followed while checking one path, as the kernel's own limit (ELOOP).
MAX_LINKS = 40


def trusted_uids() -> frozenset[int]:
    """Root, and the user who invoked storprof (the real uid, or sudo's caller): the users whose
    own directories a --workdir or --out may be in."""
    uids = {0, os.getuid()}
    sudo = os.environ.get("SUDO_UID", "")
    if sudo.isdigit() and os.getuid() == 0:
        uids.add(int(sudo))
    return frozenset(uids)


def _mode_text(st: os.stat_result) -> str:
    return f"{stat.S_IMODE(st.st_mode):o}".rjust(4, "0")


def _problem(path: str, st: os.stat_result, trusted: frozenset[int], last: bool) -> str | None:
    if st.st_uid not in trusted:
        return f"{path} is owned by uid {st.st_uid}, not by root or you"
    if st.st_mode & 0o022:
        return f"{path} is writable by {'others' if st.st_mode & 0o002 else 'its group'} (mode {_mode_text(st)})"
    if not last and not stat.S_ISDIR(st.st_mode):
        return f"{path} is not a directory"
    return None


def unsafe_reason(path: Path | str, trusted: frozenset[int] | None = None) -> str | None:
    """Why another user could steer what root does at or below `path`, or None. Components that do
    not exist yet are fine: they will be made below the last one that does."""
    trusted = trusted_uids() if trusted is None else trusted
    return _walk(os.path.abspath(path), trusted, [0])


def _walk(path: str, trusted: frozenset[int], links: list[int]) -> str | None:
    parts = Path(path).parts
    current = "/"
    for index, part in enumerate(("/", *parts[1:])):
        current = current if part == "/" else os.path.join(current, part)
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            return None
        except OSError as exc:
            return f"{current} cannot be checked: {exc.strerror}"
        if stat.S_ISLNK(st.st_mode):
            links[0] += 1
            if links[0] > MAX_LINKS:
                return f"{path} has too many symlinks"
            if st.st_uid not in trusted:
                return f"{current} is a symlink owned by uid {st.st_uid}, not by root or you"
            target = os.path.realpath(current)
            problem = _walk(target, trusted, links)
            if problem:
                return problem
            current = target
            st = os.stat(current)
        problem = _problem(current, st, trusted, index == len(parts) - 1)
        if problem:
            return problem
    return None


def require_safe(path: Path | str, what: str, trusted: frozenset[int] | None = None) -> Path:
    """`path`, absolute, or a one-line UserError saying why root must not use it."""
    problem = unsafe_reason(path, trusted)
    if problem:
        raise UserError(f"{what} {path}: {problem}; storprof only works below directories that root "
                        "(or you) own and nobody else can write")
    return Path(os.path.abspath(path))


def make_private_dir(path: Path | str, what: str, mode: int = 0o700) -> Path:
    """`path` as a directory, made (with its missing parents) `mode` after checking what exists of
    it; an existing one must pass the same check. Returns the absolute path."""
    path = require_safe(path, what)
    missing = []
    probe = path
    while not os.path.lexists(probe):
        missing.append(probe)
        probe = probe.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, mode)
        except FileExistsError:
            pass                      # made meanwhile: checked again below
        except OSError as exc:
            raise UserError(f"cannot make {what} {path}: {exc.strerror or exc}") from None
    return require_safe(path, what)


def is_dir_nofollow(path: Path | str) -> bool:
    """A real directory, not a symlink to one."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def mkdir_new(path: Path | str, mode: int = 0o700) -> Path:
    """Make a directory that must not exist yet (mkdir fails on any existing name, a symlink's too)."""
    os.mkdir(path, mode)
    return Path(path)


def write_new(path: Path | str, data: bytes | str, mode: int = 0o600) -> Path:
    """Write a file that must not exist yet: never through a symlink, never over someone's file."""
    payload = data.encode() if isinstance(data, str) else data
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        _write_all(fd, payload)
    finally:
        os.close(fd)
    return Path(path)


def replace(path: Path | str, data: bytes | str, mode: int = 0o644) -> Path:
    """Write `data` to `path` whole or not at all: a new file beside it, fsynced, renamed over it
    (rename replaces a symlink itself, it never writes through one)."""
    path = Path(path)
    payload = data.encode() if isinstance(data, str) else data
    for attempt in range(100):
        temp = path.with_name(f".{path.name}.{os.getpid()}.{attempt}.tmp")
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
        except FileExistsError:
            continue
        try:
            _write_all(fd, payload)
            os.fchmod(fd, mode)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            os.unlink(temp)
            raise
        os.close(fd)
        os.replace(temp, path)
        return path
    raise OSError(f"cannot make a temporary file beside {path}")


def open_append(path: Path | str, mode: int = 0o600) -> int:
    """A file descriptor appending to `path` (made if missing), never through a symlink; the
    file must be a regular one."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(f"{path} is not a regular file")
    return fd


def open_regular(path: Path | str, max_bytes: int) -> int:
    """A read-only descriptor of a regular file, not through a symlink (OSError ELOOP), never
    blocking on a FIFO or a device (opened O_NONBLOCK, then refused as not regular), refusing one
    over `max_bytes` (OSError with a message; FileNotFoundError when it is absent)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(f"{path} is not a regular file")
        if st.st_size > max_bytes:
            raise OSError(f"{path} is {st.st_size} bytes, more than the {max_bytes} storprof reads")
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_regular(path: Path | str, max_bytes: int) -> bytes:
    """The bytes of a regular file, not through a symlink, refusing one over `max_bytes`
    (OSError with a message; FileNotFoundError when it is absent)."""
    fd = open_regular(path, max_bytes)
    try:
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            total += len(chunk)
            if total > max_bytes:
                raise OSError(f"{path} grew past the {max_bytes} bytes storprof reads")
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def open_error(path: Path | str, exc: OSError) -> str:
    """What went wrong opening `path`, on one line: a symlink is named as one."""
    if exc.errno == errno.ELOOP:
        return f"{path} is a symlink; storprof does not follow symlinks here"
    if exc.errno is not None and exc.strerror:
        return f"{path}: {exc.strerror}"
    return str(exc)


def real_subdir(path: Path | str, what: str, mode: int = 0o755) -> Path:
    """A directory below a checked one, made new if missing; an existing name must be a real
    directory root or you own (not a symlink, not another user's), not writable by others."""
    path = Path(path)
    try:
        os.mkdir(path, mode)
    except FileExistsError:
        pass
    except OSError as exc:
        raise UserError(f"cannot make {what} {path}: {exc.strerror or exc}") from None
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise UserError(f"{what} {path} is not a directory (a symlink or a file is there); storprof "
                        "writes only into directories it made")
    problem = _problem(str(path), st, trusted_uids(), True)
    if problem:
        raise UserError(f"{what} {problem}")
    return path


def planted_link(path: Path | str) -> str | None:
    """The first symlink along `path` that no trusted user made (another user's redirect of a
    file root reads, e.g. a job file pointing at /etc/shadow), or None. Each prefix is looked at
    with lstat, so the components before it resolve as the kernel would resolve them."""
    trusted = trusted_uids()
    current = Path("/")
    for part in Path(os.path.abspath(path)).parts[1:]:
        current = current / part
        try:
            st = os.lstat(current)
        except OSError:
            return None
        if stat.S_ISLNK(st.st_mode) and st.st_uid not in trusted:
            return f"{current} is a symlink that uid {st.st_uid} made; storprof follows only root's or yours"
    return None


def _write_all(fd: int, payload: bytes) -> None:
    view = memoryview(payload)
    while view:
        written = os.write(fd, view)
        view = view[written:]
