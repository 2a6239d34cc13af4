"""Independent reads go out at once; the in-process simulator stays consistent under threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import smimig
from smimig import Layout
from smimig.runner import RunResult
from smimig.sim import SimulatedRunner


class Slow:
    """Each call takes 50 ms of waiting; records how many run at the same time."""

    def __init__(self, runner: SimulatedRunner) -> None:
        self.runner, self.lock, self.running, self.most = runner, threading.Lock(), 0, 0

    def run(self, args: Sequence[str]) -> RunResult:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(0.05)
        try:
            return self.runner.run(args)
        finally:
            with self.lock:
                self.running -= 1


def test_status_reads_at_once_and_matches_one_by_one() -> None:
    runner = SimulatedRunner("A100-40GB", gpus=4, mig=True)
    smimig.Smi(runner=runner).apply(Layout.from_dict({0: ["3g.20gb", "2g.10gb", "1g.5gb"], 2: ["7g.40gb"]}))
    slow = Slow(runner)
    at_once = smimig.Smi(runner=slow)
    start = time.perf_counter()
    together = at_once.status()
    elapsed = time.perf_counter() - start
    assert slow.most == 6
    assert elapsed < 0.25  # six 50 ms reads, not 300 ms one after another
    assert together == smimig.Smi(runner=runner, max_workers=1).status()
    assert at_once.plan(Layout.from_dict({0: ["3g.20gb", "2g.10gb", "1g.5gb"]})).is_noop
    assert at_once.export() == smimig.Smi(runner=runner, max_workers=1).export()


def test_changes_stay_one_at_a_time() -> None:
    slow = Slow(SimulatedRunner("A100-40GB", gpus=2, mig=True))
    smimig.Smi(runner=slow).apply(Layout.from_dict({0: ["1g.5gb"] * 7, 1: ["3g.20gb", "3g.20gb"]}))
    slow.most = 0
    smi = smimig.Smi(runner=slow)
    smi.destroy_ci(0)
    smi.destroy_gi(0)
    assert slow.most == 1


def test_the_in_process_simulator_is_thread_safe() -> None:
    runner = SimulatedRunner("A100-40GB", gpus=2, mig=True)
    smi = smimig.Smi(runner=runner)

    def churn(gpu: int) -> None:
        for _ in range(15):
            try:
                (gi,) = smi.create_gi(gpu, ["1g.5gb"], ci=True)
                smi.list_gis()
                smi.destroy_ci(gpu, gi=gi.id)
                smi.destroy_gi(gpu, gi=gi.id)
            except smimig.MigOperationError:
                pass  # another thread took the last slot or the instance: a refusal, not corruption
            runner.node.check()

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(churn, [0, 1] * 4))
    runner.node.check()
    assert smi.list_gis() == []
