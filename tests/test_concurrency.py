"""Independent reads go out at once; the in-process simulator stays consistent under threads."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import smimig
from smimig import Layout
from smimig.runner import RunResult
from smimig.sim import SimulatedRunner
from smimig.testing import FakeRunner


class InFlight:
    """Answers from the simulator and records how many calls are in flight at once, and on which threads.

    Each call waits until ``together`` calls are in flight (once that has happened, none waits again), so
    reads issued at once are all seen overlapping, whatever the machine's load: no clock decides. Reads
    issued one after another would each wait in vain; ``patience`` bounds that wait so such a test fails
    instead of hanging.
    """

    def __init__(self, runner: SimulatedRunner, together: int = 1, patience: float = 30.0) -> None:
        self.runner, self.together, self.patience = runner, together, patience
        self.lock, self.all_in = threading.Lock(), threading.Event()
        self.running, self.most = 0, 0
        self.threads: set[int] = set()

    def __call__(self, args: tuple[str, ...]) -> RunResult:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
            self.threads.add(threading.get_ident())
            if self.running >= self.together:
                self.all_in.set()
        self.all_in.wait(self.patience)
        try:
            return self.runner.run(args)
        finally:
            with self.lock:
                self.running -= 1


def test_status_reads_at_once_and_matches_one_by_one() -> None:
    runner = SimulatedRunner("A100-40GB", gpus=4, mig=True)
    smimig.Smi(runner=runner).apply(Layout.from_dict({0: ["3g.20gb", "2g.10gb", "1g.5gb"], 2: ["7g.40gb"]}))
    in_flight = InFlight(runner, together=6)
    at_once = smimig.Smi(runner=FakeRunner(handler=in_flight))
    together = at_once.status()
    assert in_flight.most == 6  # all six reads were running at the same time
    assert together == smimig.Smi(runner=runner, max_workers=1).status()
    assert at_once.plan(Layout.from_dict({0: ["3g.20gb", "2g.10gb", "1g.5gb"]})).is_noop
    assert at_once.export() == smimig.Smi(runner=runner, max_workers=1).export()


def test_changes_stay_one_at_a_time() -> None:
    runner = SimulatedRunner("A100-40GB", gpus=2, mig=True)
    smimig.Smi(runner=runner).apply(Layout.from_dict({0: ["1g.5gb"] * 7, 1: ["3g.20gb", "3g.20gb"]}))
    in_flight = InFlight(runner)
    fake = FakeRunner(handler=in_flight)
    smi = smimig.Smi(runner=fake)
    smi.destroy_ci(0)
    smi.destroy_gi(0)
    assert fake.calls == [("mig", "-i", "0", "-dci"), ("mig", "-i", "0", "-dgi")]
    assert in_flight.most == 1
    assert in_flight.threads == {threading.get_ident()}  # run by the caller itself, so one after another


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
