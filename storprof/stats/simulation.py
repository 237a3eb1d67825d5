"""Simulated sessions of the scheduler's extra rounds, on the noise measured on this machine.

They check the stopping rule: does the final 95% interval of an A/A cell still contain 1.00 about
95% of the time, and how many cells get an answer in a fixed budget? Thousands of sessions run at
once (numpy, seeded); the new rule's decisions are stats/sequential.py's own functions.

The fake workload is the quick sweep's storage jobs (issue 29): per job the spread of one run
pair's log-ratio to host, per placement; a round is one run of every placement and host, 0.84 s
a run. Host and placements share the host's noise, as paired runs do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from storprof.stats import sequential as seq

RUN_SECONDS = 0.84
# (job, placement) -> sd of one run pair's log ratio to host (issue 29's table, medians over specs)
NOISE = {("randread-4k", "host-aa"): 0.046, ("randread-4k", "union"): 0.062, ("randread-4k", "bind"): 0.073,
         ("randwrite-4k", "union"): 0.14, ("randwrite-4k", "bind"): 0.082,
         ("fsync-write-4k", "union"): 0.094, ("fsync-write-4k", "bind"): 0.079}
TRUE_RATIOS = (0.9, 0.97, 1.0, 1.2)      # drawn for every cell but the A/A control (always 1.00)
AA = "host-aa"


@dataclass(frozen=True)
class Result:
    """Per simulated cell (sessions x cells): its true ratio, the final n, and whether the final
    plain 95% interval contains the truth and answers the cell."""

    truth: np.ndarray
    n: np.ndarray
    covers: np.ndarray
    answered: np.ndarray
    is_aa: np.ndarray
    seconds: np.ndarray       # extra-round seconds spent per session

    def coverage(self, aa_only: bool = False) -> float:
        """How often the final interval of a cell whose true ratio is 1.00 contains 1.00."""
        mask = self.is_aa if aa_only else np.isclose(self.truth, 1.0)
        return float(self.covers[mask].mean())

    def answered_at(self, ratio: float) -> float:
        mask = np.isclose(self.truth, ratio) & ~self.is_aa
        return float(self.answered[mask].mean())


class Sessions:
    """The pairs every simulated session would draw, fixed in advance: both rules see the same data."""

    def __init__(self, sessions: int, seed: int = 29, max_repeats: int = 30, noise: dict | None = None,
                 alone: bool = False):
        noise = noise or NOISE
        rng = np.random.default_rng(seed)
        self.cells = list(noise)
        # alone: every cell a group of its own (a probe's one side against host), else one per job
        names = [c if alone else c[0] for c in self.cells]
        groups = list(dict.fromkeys(names))
        self.member = np.array([[name == g for g in groups] for name in names], dtype=float)
        self.group_of = np.array([groups.index(name) for name in names])
        self.cost = np.array([(self.member[:, g].sum() + 1) * RUN_SECONDS for g in range(len(groups))])
        self.is_aa = np.array([p == AA for _, p in self.cells])
        sd = np.array([noise[c] for c in self.cells])
        truth = rng.choice(TRUE_RATIOS, size=(sessions, len(self.cells)))
        self.truth = np.where(self.is_aa, 1.0, truth)
        # the host's own noise is shared by its group's cells: half the smallest pair variance
        host_sd = np.array([sd[self.group_of == g].min() / np.sqrt(2) for g in range(len(groups))])
        own_sd = np.sqrt(sd ** 2 - host_sd[self.group_of] ** 2)
        host = rng.normal(0, 1, (sessions, max_repeats, len(groups))) * host_sd
        own = rng.normal(0, 1, (sessions, max_repeats, len(self.cells))) * own_sd
        # drift between rounds moves host and placements alike and cancels in the paired ratio
        self.logs = np.log(self.truth)[:, None, :] + own - host[:, :, self.group_of]

    def final(self, n: np.ndarray, target: float, seconds: np.ndarray) -> Result:
        """The plain 95% t-interval of every cell on its first n pairs, as users see it."""
        k = np.arange(self.logs.shape[1])[None, :, None] < n[:, None, :]
        mean, sd = _moments(self.logs, k, n)
        half = seq.plain_t(n) * sd / np.sqrt(n)
        err = mean - np.log(self.truth)
        covers = np.abs(err) <= half
        answered = (np.abs(mean) > half) | (half <= np.log1p(target))
        return Result(self.truth, n, covers, answered, np.broadcast_to(self.is_aa, n.shape), seconds)


def _moments(logs: np.ndarray, taken: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    total = np.where(taken, logs, 0).sum(axis=1)
    mean = total / n
    dev = np.where(taken, logs - mean[:, None, :], 0)
    return mean, np.sqrt((dev ** 2).sum(axis=1) / np.maximum(n - 1, 1))


def run(sessions: Sessions, rule_name: str, budget: float, target: float = 0.05, start: int = 3,
        max_repeats: int = 30) -> Result:
    """Every session starts at `start` pairs per cell and spends at most `budget` seconds on extra
    rounds by the named rule: 'widest' (today's: the group with the widest interval first, until
    all are within the target), 'sequential' (sequential.py's stopping rule and rates) or 'naive'
    (the same allocation, stopping the moment the plain 95% interval excludes 1.00)."""
    count = sessions.logs.shape[0]
    groups = sessions.member.shape[1]
    n = np.full((count, groups), start)
    spent = np.zeros(count)
    active = np.ones(count, dtype=bool)
    given_up = np.zeros((count, len(sessions.cells)), dtype=bool)
    rule = seq.Rule(target, max_repeats, start) if rule_name != "naive" else \
        seq.Rule(target, max_repeats, start, alpha=0.05, looks=1)
    rows = np.arange(count)
    while active.any():
        at = rows[active]
        cell_n = n[at][:, sessions.group_of]
        k = np.arange(sessions.logs.shape[1])[None, :, None] < cell_n[:, None, :]
        mean, sd = _moments(sessions.logs[at], k, cell_n)
        left = budget - spent[at]
        if rule_name == "widest":
            choice = _widest(rule, cell_n, sd, sessions, n[at], left)
        else:
            gave = given_up[at]
            choice = _best_rate(rule, cell_n, mean, sd, sessions, n[at], left, gave)
            given_up[at] = gave
        going = choice >= 0
        active[at[~going]] = False
        n[at[going], choice[going]] += 1
        spent[at[going]] += sessions.cost[choice[going]]
    return sessions.final(n[:, sessions.group_of], target, spent)


def _widest(rule: seq.Rule, cell_n, sd, sessions: Sessions, n, left) -> np.ndarray:
    """Today's rule: the group whose widest half-width is furthest over the target, among those
    whose widest cell could reach it within max_repeats; -1 when none, or when it does not fit."""
    half = seq.plain_t(cell_n) * sd / np.sqrt(cell_n)
    width = np.where(sessions.member.T[None, :, :] > 0, half[:, None, :], -np.inf).max(axis=2)
    widest_cell = np.where(sessions.member.T[None, :, :] > 0, half[:, None, :], -np.inf).argmax(axis=2)
    widest_sd = np.take_along_axis(sd, widest_cell, axis=1)
    needed = _repeats_needed(widest_sd, rule)
    reachable = (width > rule.log_target) & (n < rule.max_repeats) & (needed <= rule.max_repeats)
    choice = np.where(reachable, width, -np.inf).argmax(axis=1)
    fits = reachable.any(axis=1) & (sessions.cost[choice] <= left)
    return np.where(fits, choice, -1)


def _repeats_needed(sd, rule: seq.Rule) -> np.ndarray:
    big = np.arange(2, rule.max_repeats + 2)
    ok = seq.plain_t(big) * sd[..., None] / np.sqrt(big) <= rule.log_target
    return np.where(ok.any(axis=-1), big[ok.argmax(axis=-1)], rule.max_repeats + 1)


def _best_rate(rule: seq.Rule, cell_n, mean, sd, sessions: Sessions, n, left, given_up) -> np.ndarray:
    """The sequential rule, the scheduler's own step (sequential.choose); -1 when it runs nothing."""
    choice, gave, _ = seq.choose(rule, cell_n, mean, sd, sessions.member, sessions.cost, n, left, given_up)
    given_up[...] = gave
    return choice
