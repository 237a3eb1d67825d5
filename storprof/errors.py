"""One root error so the CLI can turn every expected failure into a one-line message."""


def first_line(e: BaseException) -> str:
    """An exception's message on one line (its first), or its type's name when it has none."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


class StorprofError(Exception):
    """Base of every error storprof expects; the CLI prints it on one line, no traceback."""

    exit_code = 1


class UserError(StorprofError):
    """Bad input: an unknown driver, a broken job file, an unusable directory."""

    exit_code = 2


class EnvironmentProblem(StorprofError):
    """The machine lacks something: a binary, root, disk space, a kernel feature."""

    exit_code = 3


class MissingTool(EnvironmentProblem):
    """A binary storprof needs is not installed; names the Debian package that provides it."""

    def __init__(self, tool: str, package: str):
        super().__init__(f"{tool} is not installed (install the Debian/Ubuntu package '{package}')")
        self.tool = tool
        self.package = package


class DaemonError(StorprofError):
    """A dockerd that would not start, answer or stop."""

    exit_code = 4


class FioError(StorprofError):
    """fio ran but failed; carries fio's own message."""

    exit_code = 5
