"""`storprof setup`: what storprof needs on this machine, what is missing, and getting it.

A user who installs the package, or a host in a fleet, has no repository script: set-up is a
command. It installs the Debian packages of the tools in tools.py that are not on PATH (with apt,
keeping the packages' services from starting) and fetches an engine with the containerd image
store into storprof's cache when none is here. `--check` installs nothing: it says what is missing
and what each missing part costs (the specs and workloads that cannot run without it), and what
this machine cannot run whatever set-up does (no device-mapper in the kernel, say).

What is missing is decided from facts (a tool on PATH, the engines storprof can start, the
reasons drivers.reasons gives), never from a command's prose. apt's output goes to a log file in
storprof's cache; the step that fails prints its path.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from storprof import __version__
from storprof.engine import drivers
from storprof.engine.drivers import DriverSpec
from storprof.engine.engines import FETCH_PACKAGES, FETCH_SUITE, SYSTEM, Engine, all_engines, cache_dir, fetch
from storprof.engine.engines import newest_with_containerd_store as newest_store
from storprof.errors import MissingTool, StorprofError
from storprof.host import proc, safepath
from storprof.host.facts import HostFacts, host_facts
from storprof.host.tools import Tool, setup_tools
from storprof.views.tables import by_reason, some_names

Say = Callable[..., None]          # click.echo's shape: say(text, nl=True)

# An engine `storprof setup` would fetch, for working out what it would make runnable (the suite's
# real version is known only once fetched; any with the containerd store answers the same).
FETCHED = Engine("fetched", "", (28,))
ENGINE_NEEDED_BY = "containerd's snapshotters (Docker's containerd image store) and overlay2 on a newer Docker"
# Keeps apt's maintainer scripts from starting services while set-up installs (invoke-rc.d asks it).
POLICY_RC_D = Path("/usr/sbin/policy-rc.d")
SERVICE_GUARD = "#!/bin/sh\n# storprof setup: no service starts while it installs packages\nexit 101\n"
APT_TIMEOUT = 3600


@dataclass(frozen=True)
class Missing:
    """One thing set-up provides that is not here, and what its absence costs."""

    kind: str                   # "tool" or "engine"
    name: str                   # the tool, or "engine"
    package: str | None         # the Debian package set-up installs (None: the engine, fetched)
    needed_by: str
    specs: tuple[str, ...]      # driver specs that would run here with it, and do not now

    @property
    def what(self) -> str:
        if self.kind == "engine":
            return (f"an engine with the containerd image store (storprof setup fetches Debian {FETCH_SUITE}'s "
                    f"{' and '.join(FETCH_PACKAGES)})")
        return f"{self.name} (package {self.package})"

    def line(self) -> str:
        if self.specs:
            return f"missing: {self.what}: without it {some_names(list(self.specs), len(self.specs))} cannot run here"
        return f"missing: {self.what}, for {self.needed_by}"


@dataclass(frozen=True)
class Check:
    """What `storprof setup --check` found."""

    missing: tuple[Missing, ...]
    tools: tuple[str, ...]                              # those set-up provides that are here
    engines: tuple[Engine, ...]
    runnable: tuple[str, ...]                           # the default specs this host runs now
    machine: tuple[tuple[str, tuple[str, ...]], ...]    # (reason, specs) that set-up cannot change

    def lines(self) -> list[str]:
        out = [m.line() for m in self.missing]
        engines = ", ".join(f"Docker {e.version_text}" + (" (containerd image store)" if e.containerd_store else "")
                            for e in self.engines) or "no Docker engine"
        out.append(f"present: {len(self.tools)} of the tools storprof runs; {engines}")
        out.append(f"runs here: {len(self.runnable)} driver specs ({', '.join(self.runnable)})")
        if self.machine:
            out.append("cannot run here, whatever set-up does:")
        out += [f"  {some_names(list(specs), 3)}: {reason}" for reason, specs in self.machine]
        out.append(f"{len(self.missing)} missing: storprof setup installs and fetches it" if self.missing
                   else "nothing missing: set-up has nothing to do")
        return out

    def to_json(self) -> dict:
        return {"complete": not self.missing,
                "missing": [{**dataclasses.asdict(m), "what": m.what} for m in self.missing],
                "tools": list(self.tools), "engines": [e.name for e in self.engines],
                "containerd_store": any(e.containerd_store for e in self.engines),
                "runnable": list(self.runnable),
                "machine": [{"reason": reason, "specs": list(specs)} for reason, specs in self.machine]}


def present(tool: Tool) -> bool:
    """Whether a tool is here: on PATH, or where its glob says (a server outside PATH)."""
    return bool(glob.glob(tool.where)) if tool.where else on_path(tool.name)


def on_path(tool: str) -> bool:
    try:
        proc.require(tool)
    except MissingTool:
        return False
    return True


def after_setup(facts: HostFacts, tests: bool = False) -> HostFacts:
    """The host as set-up would leave it: every tool it provides on PATH, an engine with the
    containerd store. What stays is the machine's own: its kernel, its devices, root or not."""
    engines = facts.engines if newest_store(list(facts.engines)) else (*facts.engines, FETCHED)
    return dataclasses.replace(facts, tools=facts.tools | {t.name for t in setup_tools(tests)}, engines=engines)


def _label(spec: DriverSpec) -> str:
    """A spec as a user would name it; one on the engine set-up would fetch, without its placeholder name."""
    if spec.engine != FETCHED.name:
        return str(spec)
    plain = str(dataclasses.replace(spec, engine=SYSTEM))
    return plain if spec.info.store == "containerd" else f"{plain} on the fetched engine"


def _runnable(facts: HostFacts) -> list[str]:
    return [_label(s) for s in drivers.default_specs(facts.host_fs, list(facts.engines))
            if not drivers.reasons(s, facts)]


def costs(now: HostFacts, better: HostFacts) -> tuple[str, ...]:
    """The default specs that run with `better` and not with `now`."""
    runs_now = set(_runnable(now))
    return tuple(dict.fromkeys(s for s in _runnable(better) if s not in runs_now))


def check(tests: bool = False, host_fs: str | None = None) -> Check:
    """What set-up would provide that is missing, what each costs, and what it cannot change."""
    facts = host_facts(host_fs)
    wanted = setup_tools(tests)
    absent = [t for t in wanted if not present(t)]
    missing = [Missing("tool", t.name, t.package, t.needed_by,
                       costs(facts, dataclasses.replace(facts, tools=facts.tools | {t.name}))) for t in absent]
    if newest_store(list(facts.engines)) is None:
        missing.append(Missing("engine", "engine", None, ENGINE_NEEDED_BY,
                               costs(facts, dataclasses.replace(facts, engines=(*facts.engines, FETCHED)))))
    after = after_setup(facts, tests)
    blocked = [(_label(s), "; ".join(why)) for s in drivers.default_specs(after.host_fs, list(after.engines))
               if (why := drivers.reasons(s, after))]
    return Check(tuple(missing), tuple(t.name for t in wanted if t not in absent), facts.engines,
                 tuple(_runnable(facts)), tuple((r, tuple(specs)) for r, specs in by_reason(blocked)))


def blockers(text: str, host_fs: str | None = None) -> tuple[list[str], list[str]]:
    """Why `text` (a driver spec) cannot run here now, and why it still could not after set-up:
    the tests' strict mode fails a test set-up should have made runnable, and skips the others."""
    facts = host_facts(host_fs)
    after = after_setup(facts, tests=True)
    now = drivers.reasons(DriverSpec.parse(text, facts.host_fs, list(facts.engines)), facts)
    later = drivers.reasons(DriverSpec.parse(text, after.host_fs, list(after.engines)), after) if now else []
    return now, later


# --------------------------------------------------------------------------- doing it

class SetupLog:
    """apt's and the fetch's output, in a file of root's own in storprof's cache; made on first use."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.path: Path | None = None

    def write(self, text: str) -> None:
        if self.path is None:
            safepath.make_private_dir(self.directory, "set-up's log directory")
            self.path = safepath.write_new(
                self.directory / f"setup-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log", "")
        fd = safepath.open_append(self.path)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)

    def run(self, argv: list[str], env: dict[str, str] | None = None) -> proc.Completed:
        """Run a command with its output into the log; a failure says where the log is."""
        self.write(f"$ {' '.join(argv)}\n")
        done = proc.run(argv, timeout=APT_TIMEOUT, check=False, env=env)
        self.write(done.stdout + done.stderr + f"[exit {done.returncode}]\n")
        if done.returncode != 0:
            raise StorprofError(f"{argv[0]} {argv[1]} failed (exit {done.returncode}); its output is in {self.path}")
        return done


def run(say: Say, tests: bool = False, host_fs: str | None = None) -> Check:
    """Install what is missing, fetch the engine if none has the containerd store, then check;
    one line per step. Safe to run again: a step with nothing to do says so."""
    if os.geteuid() != 0:
        raise StorprofError("storprof setup installs packages and writes to storprof's cache: run it as root "
                            "(storprof setup --check only looks)")
    log = SetupLog(cache_dir().parent / "logs")
    _packages_step(setup_tools(tests), log, say)
    _engine_step(log, say)
    found = check(tests, host_fs)
    if found.missing:
        raise StorprofError(f"still missing after set-up: {', '.join(m.what for m in found.missing)}"
                            + (f" (log: {log.path})" if log.path else ""))
    fio = proc.run(["fio", "--version"], timeout=30).stdout.strip()
    docker = " and ".join(e.version_text for e in found.engines)
    say(f"setup: ready: storprof {__version__}, {fio}, Docker {docker}; {len(found.runnable)} driver specs run "
        f"here, {sum(len(s) for _, s in found.machine)} cannot on this machine (storprof setup --check says why)")
    return found


def _packages_step(tools: tuple[Tool, ...], log: SetupLog, say: Say) -> None:
    missing = [t for t in tools if not present(t)]
    if not missing:
        say(f"setup: packages: the {len(tools)} tools storprof runs are here")
        return
    packages = list(dict.fromkeys(t.package for t in missing))
    if not on_path("apt-get"):
        raise StorprofError(f"storprof setup installs with apt-get, which this machine does not have; "
                            f"install {' '.join(packages)} yourself")
    started = time.monotonic()
    say(f"setup: packages: installing {' '.join(packages)} with apt-get ...", nl=False)
    # needrestart (Debian's apt hook) would otherwise restart services whose libraries were upgraded.
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive", "NEEDRESTART_SUSPEND": "1"}
    try:
        with services_kept_stopped():
            log.run(["apt-get", "update", "-q"], env)
            log.run(["apt-get", "install", "-y", "-q", *packages], env)
        _disable_at_boot([s for t in missing for s in t.services], log)
        still = [t.name for t in missing if not present(t)]
        if still:
            raise StorprofError(f"apt-get installed {' '.join(packages)}, but {', '.join(still)} is still not on "
                                f"PATH (log: {log.path})")
    except BaseException:
        say(" failed")
        raise
    say(f" done ({time.monotonic() - started:.0f} s; apt's output: {log.path})")


@contextmanager
def services_kept_stopped() -> Iterator[None]:
    """No package starts a system service meanwhile (nginx's and iperf3's would listen on the host's
    ports; storprof runs its own servers in its own namespaces): a policy-rc.d that says no, made
    only where there is none, and removed again. One with exactly this content is a killed
    set-up's, and is removed too."""
    try:
        safepath.write_new(POLICY_RC_D, SERVICE_GUARD, 0o755)
        os.chmod(POLICY_RC_D, 0o755)
        ours = True
    except FileExistsError:
        try:
            ours = safepath.read_regular(POLICY_RC_D, 4096).decode(errors="replace") == SERVICE_GUARD
        except OSError:
            ours = False
    try:
        yield
    finally:
        if ours:
            POLICY_RC_D.unlink(missing_ok=True)


def _disable_at_boot(services: list[str], log: SetupLog) -> None:
    """... nor at the next boot: the services of packages installed just now, where systemd runs."""
    if services and on_path("systemctl") and Path("/run/systemd/system").is_dir():
        for service in services:
            log.write(f"$ systemctl disable {service}\n")
            done = proc.run(["systemctl", "disable", service], timeout=120, check=False)
            log.write(done.stdout + done.stderr)


def _engine_step(log: SetupLog, say: Say) -> None:
    have = newest_store(all_engines())
    if have is not None:
        say(f"setup: engine: Docker {have.version_text} with the containerd image store is here ({have.source})")
        return
    started = time.monotonic()
    say(f"setup: engine: fetching Debian {FETCH_SUITE}'s {' and '.join(FETCH_PACKAGES)} into {cache_dir()} ...",
        nl=False)
    try:
        engine, _ = fetch(say=lambda line: log.write(line + "\n"))
    except BaseException as exc:
        say(" failed")
        if isinstance(exc, StorprofError) and log.path:
            raise StorprofError(f"engine fetch: {exc} (log: {log.path})") from None
        raise
    say(f" Docker {engine.version_text} with containerd {engine.containerd_version or '?'} "
        f"({time.monotonic() - started:.0f} s)")
