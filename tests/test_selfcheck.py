"""The end-of-run self-check tells its three causes apart from the figures alone."""

from __future__ import annotations

from latlab.runner.engine.execute import RunStats
from latlab.runner.engine.lag import (
    BLOCKED,
    BUSY_MACHINE,
    SATURATED,
    ClientLoad,
    CpuCounters,
    diagnose,
    machine_load,
)
from latlab.runner.engine.progress import client_warning


def stats(load: ClientLoad, streams: int, late: int = 30) -> RunStats:
    return RunStats(total=300, done=300, late=late, limit_ms=5.0, load=load, streams=streams)


SATURATED_LOAD = ClientLoad(loop_lag_p99_ms=24.0, loop_lag_max_ms=61.0, cpu_pct=97.0,
                            loop_wait_pct=0.2, others_cores=0.3, steal_pct=0.0, loadavg=1.3,
                            cpus=2)
BLOCKED_LOAD = ClientLoad(loop_lag_p99_ms=9.0, loop_lag_max_ms=118.0, cpu_pct=40.0,
                          loop_wait_pct=0.1, others_cores=0.2, steal_pct=0.0, loadavg=0.6,
                          cpus=2)
BUSY_LOAD = ClientLoad(loop_lag_p99_ms=5.1, loop_lag_max_ms=60.0, cpu_pct=3.5,
                       loop_wait_pct=4.2, others_cores=1.9, steal_pct=0.0, loadavg=2.6, cpus=2)


def test_each_cause_is_told_apart() -> None:
    assert diagnose(SATURATED_LOAD, 0.0, 5.0) == SATURATED
    assert diagnose(BLOCKED_LOAD, 0.0, 5.0) == BLOCKED
    assert diagnose(BUSY_LOAD, 0.0, 5.0) == BUSY_MACHINE


def test_a_client_that_kept_time_gets_no_warning() -> None:
    calm = ClientLoad(loop_lag_p99_ms=0.8, loop_lag_max_ms=3.0, cpu_pct=30.0, cpus=2)
    assert diagnose(calm, 0.0, 5.0) is None
    assert client_warning(stats(calm, streams=64, late=0), workers=1) is None


def test_steal_alone_marks_a_busy_machine() -> None:
    stolen = ClientLoad(loop_lag_p99_ms=12.0, cpu_pct=20.0, loop_wait_pct=0.0,
                        others_cores=0.1, steal_pct=8.0, cpus=2)
    assert diagnose(stolen, 0.0, 5.0) == BUSY_MACHINE


def test_saturated_with_many_streams_advises_one_more_worker() -> None:
    text = client_warning(stats(SATURATED_LOAD, streams=64), workers=1)
    assert text is not None
    assert "inflated by up to 24.0 ms at p99, 61.0 ms at worst" in text
    assert "saturated" in text and "workload.workers=2" in text


def test_saturated_single_stream_is_not_told_to_add_workers() -> None:
    text = client_warning(stats(SATURATED_LOAD, streams=1), workers=1)
    assert text is not None and "workers=" not in text


def test_busy_machine_at_concurrency_one_never_advises_more_workers() -> None:
    text = client_warning(stats(BUSY_LOAD, streams=1), workers=1)
    assert text is not None
    assert "busy with other processes" in text and "workers=" not in text
    assert "more workers would not help" in text
    assert "Client CPU 3.5% of a core (saturated from 90%)" in text  # a threshold, named as one
    assert "1.9 of 2 CPUs busy" in text and "waited for a CPU 4.2%" in text


def test_blocked_loop_points_at_latlab_not_at_the_machine() -> None:
    text = client_warning(stats(BLOCKED_LOAD, streams=64), workers=1)
    assert text is not None
    assert "latlab's own code blocked its event loop" in text and "workers=" not in text
    assert "118.0 ms at worst" in text


def test_machine_load_splits_this_process_from_the_others() -> None:
    """1 s; 2 CPUs; 150 of 200 jiffies busy (1.5 CPUs), this process 0.4 s of CPU, 30 ms
    of runqueue wait for the loop thread, 4 jiffies stolen."""
    a = CpuCounters(busy=1000, total=4000, steal=10, wait_ns=0, process_s=2.0, wall_ns=0)
    b = CpuCounters(busy=1150, total=4200, steal=14, wait_ns=30_000_000, process_s=2.4,
                    wall_ns=1_000_000_000)
    load = machine_load(a, b, cpu_pct=40.0)
    assert load.cpus is not None and load.others_cores is not None
    assert load.others_cores == 150 / 200 * load.cpus - 0.4
    assert load.loop_wait_pct == 3.0 and load.steal_pct == 2.0 and load.cpu_pct == 40.0


def test_counters_are_read_from_proc() -> None:
    counters = CpuCounters.now()
    assert counters.total > counters.busy > 0 and counters.wall_ns > 0
