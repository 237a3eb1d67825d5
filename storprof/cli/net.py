"""storprof net: what Docker's network paths cost. Options in, one NetPlan built, the run called."""

from __future__ import annotations

import time

import click

from storprof.cli.options import (
    budget_option,
    format_option,
    one_line_errors,
    out_option,
    parse_precision,
    precision_option,
    quiet_option,
    resume_option,
    say,
    split,
    workdir_option,
)
from storprof.errors import StorprofError, UserError
from storprof.harness.layout import new_run_id
from storprof.harness.timeaccount import STATISTICS
from storprof.operations import net as net_run
from storprof.operations.workdir import make_workdir
from storprof.results import ResultSet
from storprof.results.records import NetRecord
from storprof.stats.intervals import DEFAULT_PRECISION
from storprof.stats.network import net_rows
from storprof.views.result_files import write_net_table
from storprof.views.terminal import net_blocks
from storprof.views.timeaccount import time_account_lines


@click.command("net")
@click.option("--paths", "path_list", help="Comma-separated network paths [all]: "
              "host-network, proxy-loopback, dnat-loopback, dnat-bridge, bridge (the host baseline always runs).")
@click.option("--workloads", "workload_list",
              help="Comma-separated workloads [throughput, latency, connect, http]; also pgbench, "
              "pgbench-volume and pgbench-connect: the article's experiment, PostgreSQL reached over each path "
              "with its data on the top layer or a volume.")
@click.option("--engines", "engine_list", help="Comma-separated Docker engines (see storprof engines) "
              "[the newest one here].")
@click.option("--seconds", type=int, help="Seconds each client run measures [5; quick 2].")
@click.option("--repeat", type=int, help="Rounds of every path and workload [5; quick 3].")
@click.option("--quick", is_flag=True, help="2-second runs, 3 rounds: about 4 minutes.")
@precision_option("Aim every ratio's 95% interval at ±this (e.g. 5% or 0.05): after --repeat rounds, extra "
                  "rounds go where one more round is most likely to answer a path's ratio [5% with --budget; "
                  "off without either].")
@budget_option("Minutes the run may take: shared out among the engines, each spends what is left of its share "
               "on extra rounds [no extra rounds].")
@workdir_option("Where the daemons' data roots and the run's scratch files go.")
@out_option("Results directory [storprof-results/<time>].")
@resume_option("Continue an interrupted run in its results directory (runs that ended ok are kept).")
@format_option()
@quiet_option("No progress bar and no line per finished run.")
@one_line_errors
def net_cmd(path_list, workload_list, engine_list, seconds, repeat, quick, precision, budget, workdir, out, resume_dir,
            fmt, quiet):
    """What Docker's network paths cost: docker-proxy, iptables DNAT, the bridge and host networking,
    each against the same server on the host, in network namespaces of storprof's own."""
    from storprof.network import plan as netplan
    from storprof.network.plan import NetPlan, NetSettings, parse_choice
    started = time.monotonic()
    preset = netplan.QUICK if quick else netplan.THOROUGH
    paths = parse_choice(path_list, {p: v for p, v in netplan.PATHS.items() if p != netplan.HOST}, "paths")
    workloads = parse_choice(workload_list, netplan.WORKLOADS, "workloads", netplan.DEFAULT_WORKLOADS)
    if seconds is not None and not 1 <= seconds <= netplan.MAX_SECONDS:
        raise UserError(f"--seconds must be a whole number from 1 to {netplan.MAX_SECONDS}")
    if repeat is not None and not 1 <= repeat <= netplan.MAX_REPEAT:
        raise UserError(f"--repeat must be a whole number from 1 to {netplan.MAX_REPEAT}")
    target, budget_seconds = parse_precision(precision, budget)
    if resume_dir and out:
        raise UserError("--resume continues in its own directory; leave out --out")
    net_run.check_machine()
    names = net_run.engine_names(split(engine_list) if engine_list is not None else None)
    settings = NetSettings(seconds=seconds or preset.seconds, repeat=repeat or preset.repeat)
    meta = {"command": "net", "net": {"paths": paths, "workloads": workloads, "engines": names,
                                      "seconds": settings.seconds, "repeat": settings.repeat, "quick": quick},
            "precision": target, "budget_seconds": budget_seconds}
    previous = net_run.previous_results(resume_dir, settings.seconds) if resume_dir else None
    workdir = make_workdir(workdir, on_disk=True)
    plan = NetPlan(engines=names, paths=paths, workloads=workloads, settings=settings, run_id=new_run_id(),
                   precision=target, budget_seconds=budget_seconds)
    run = net_run.run_net(plan, resume_dir or out, meta, workdir, quiet, previous, started)
    with run.account.phase(STATISTICS):
        rows = net_rows(ResultSet.load(run.results_dir).of(NetRecord), target or DEFAULT_PRECISION)
        write_net_table(run.results_dir, rows)
        blocks = net_blocks(rows, fmt)
    account = run.finish_account()
    say(*blocks, *([] if fmt in ("csv", "json") else ["", *time_account_lines(account)]))
    click.echo(f"\nResults: {run.results_dir}  (net.md, results.jsonl, raw/net/)")
    click.echo(f"Again: storprof table {run.results_dir}   Charts: storprof report {run.results_dir}")
    click.echo(f"Total wall time: {time.monotonic() - started:.0f} s")
    if not run.measured_any:
        raise StorprofError("no network path could be measured (see the reasons above)")


COMMANDS = (net_cmd,)
