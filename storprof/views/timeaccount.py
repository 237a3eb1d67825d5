"""Where the time went: a table with one row per spec, its phases in a few columns, and a line for
the whole run, from meta.json's `time_account` (harness/timeaccount.py), which keeps every phase.
The phases are fields; their words and groups are made here."""

from __future__ import annotations

import textwrap

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


# The table's columns after the spec and its wall time: each a group of phases. The workloads'
# own phases (copyup, deep-stack, ..., net) are the column with no names of its own.
COLUMNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("measuring", ("fio_measuring",)),
    ("fio start", ("fio_startup", "fio_ramp", "fio")),
    ("data, settle", ("precondition", "settle")),
    ("workloads", ()),
    ("layers", ("layers",)),
    ("engine", ("backing_fs", "daemon_start", "image", "containers")),
    ("teardown", ("teardown",)),
    ("other", ("other",)),
)
GROUPED = {name for _, names in COLUMNS for name in names}


def time_account_lines(account: dict | None) -> list[str]:
    """The per-spec table (a row per spec, in meta.json's order), what its columns hold, then the
    run's line, each within the answer's width; nothing without an account."""
    if not account:
        return []
    specs = account.get("specs") or {}
    if not specs:
        return [wrap_parts(run_line(account))]
    width = max(4, *(len(label) for label in specs))
    used = [(title, names) for title, names in COLUMNS
            if any(_group(spec.get("phases") or {}, names) >= 0.05 for spec in specs.values())]
    header = f"{'spec':<{width}}  {'wall':>6}" + "".join(f"  {title:>{_w(title)}}" for title, _ in used)
    rows = [header, "-" * len(header)]
    for label, spec in specs.items():
        phases, wall = spec.get("phases") or {}, float(spec.get("wall_seconds") or 0.0)
        cells = [_cell(_group(phases, names), wall if title == "measuring" else 0.0) for title, names in used]
        rows.append(f"{label:<{width}}  {seconds_text(wall):>6}"
                    + "".join(f"  {c:>{_w(t)}}" for c, (t, _) in zip(cells, used)))
    workloads = sorted({n for spec in specs.values() for n, v in (spec.get("phases") or {}).items()
                        if n not in GROUPED and v >= 0.05})
    note = ("where the time went, per spec: measuring, what fio says it measured (share of the wall time); "
            "fio start, each timed run's exec, start, exit and ramp; data, settle: the data files, a quiet disk "
            "before each run" + (f"; workloads: {', '.join(workloads)}" if workloads else "")
            + "; engine: backing fs, daemon, images, containers. meta.json keeps every phase.")
    return ["\n".join(rows), _wrap_words(note), wrap_parts(run_line(account))]


def _w(title: str) -> int:
    return max(len(title), 6)


def _group(phases: dict[str, float], names: tuple[str, ...]) -> float:
    if names:
        return sum(float(phases.get(n, 0.0)) for n in names)
    return sum(float(v) for n, v in phases.items() if n not in GROUPED)


def _cell(seconds: float, wall: float) -> str:
    if seconds < 0.05:
        return "-"
    return seconds_text(seconds) + (f" {seconds / wall:.0%}" if wall > 0 else "")


def _wrap_words(text: str, width: int = COMPACT_WIDTH) -> str:
    return textwrap.fill(text, width=width, subsequent_indent="  ", break_on_hyphens=False)


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
