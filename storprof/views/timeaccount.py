"""Where the time went: one line per spec, and one for the whole run, from meta.json's
`time_account` (harness/timeaccount.py). The phases are fields; their words are made here."""

from __future__ import annotations

from storprof.views.tables import COMPACT_WIDTH

# The words for each phase the harness names; a workload's own time is under its registered name,
# said as that name ("copyup", "layers"), except fio's, which is what is left around its runs.
PHASE_WORDS = {
    "plan": "plan and checks",
    "backing_fs": "backing fs",
    "daemon_start": "daemon",
    "image": "image",
    "containers": "containers",
    "precondition": "data files",
    "settle": "settle",
    "fio_measuring": "fio measuring",
    "fio_ramp": "fio ramp",
    "fio_startup": "fio start-up",
    "fio": "fio bookkeeping",
    "teardown": "teardown",
    "statistics": "statistics and views",
    "other": "other",
}
# Shown first, with their share of the wall time: the part spent measuring, and what it costs.
HEADLINE = ("fio_measuring", "fio_ramp", "fio_startup")
OTHER = "other"


def seconds_text(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds >= 9.5 else f"{seconds:.1f} s"


def phases_text(phases: dict[str, float], wall: float) -> str:
    """'fio measuring 22 s (36%), fio start-up 11 s (18%), image 9 s, ..., other 1 s': the headline
    phases first with their shares, then the rest, largest first, `other` last; phases under
    0.05 s are left out."""
    shown = {name: s for name, s in phases.items() if s >= 0.05}
    first = [name for name in HEADLINE if name in shown]
    rest = sorted((n for n in shown if n not in HEADLINE and n != OTHER), key=lambda n: -shown[n])
    parts = [f"{PHASE_WORDS.get(n, n)} {seconds_text(shown[n])}" + (f" ({shown[n] / wall:.0%})" if wall > 0 else "")
             for n in first]
    parts += [f"{PHASE_WORDS.get(n, n)} {seconds_text(shown[n])}" for n in rest]
    if OTHER in shown:
        parts.append(f"{PHASE_WORDS[OTHER]} {seconds_text(shown[OTHER])}")
    return ", ".join(parts) or "nothing timed"


def spec_line(label: str, spec: dict) -> str:
    wall = float(spec.get("wall_seconds") or 0.0)
    return f"[{label}] where the time went: {seconds_text(wall)} — {phases_text(spec.get('phases') or {}, wall)}"


def run_line(account: dict) -> str:
    """The whole run: its specs' wall time (and fio's measuring share of the run), then the
    run's own phases."""
    wall = float(account.get("wall_seconds") or 0.0)
    specs = account.get("specs") or {}
    in_specs = sum(float(s.get("wall_seconds") or 0.0) for s in specs.values())
    measuring = sum(float((s.get("phases") or {}).get("fio_measuring", 0.0)) for s in specs.values())
    parts = [f"{len(specs)} spec{'s' if len(specs) != 1 else ''} {seconds_text(in_specs)}"]
    if measuring and wall > 0:
        parts[0] += f" (fio measuring {seconds_text(measuring)}, {measuring / wall:.0%} of the run)"
    run_phases = phases_text(account.get("run") or {}, 0.0)
    return f"where the time went, whole run: {seconds_text(wall)} — " + ", ".join(
        [*parts, *([run_phases] if run_phases != "nothing timed" else [])])


def time_account_lines(account: dict | None) -> list[str]:
    """A line per spec in the order they ran, then the run's, each wrapped to the answer's width
    (continuations indented); nothing without an account."""
    if not account:
        return []
    lines = [*(spec_line(label, spec) for label, spec in (account.get("specs") or {}).items()), run_line(account)]
    return [wrap_parts(line) for line in lines]


def wrap_parts(line: str, width: int = COMPACT_WIDTH) -> str:
    """Wrap after the commas between phases (never between a number and its unit), continuations
    indented by two."""
    parts = line.split(", ")
    rows, current = [], parts[0]
    for part in parts[1:]:
        if len(current) + 2 + len(part) < width:      # room for the comma the row may end with
            current += ", " + part
        else:
            rows.append(current + ",")
            current = "  " + part
    rows.append(current)
    return "\n".join(rows)
