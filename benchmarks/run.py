"""smimig's benchmarks: what smimig adds on top of nvidia-smi. Prints tables; asserts nothing.

    python benchmarks/run.py            (also: tox -e bench)
    python benchmarks/run.py --quick    fewer repetitions

    python benchmarks/run.py --only start parse   some sections

Sections: the ``smimig`` command's start-up against the dependency floor (``python -c "import attrs, tabulate,
parse"``); import time over a bare interpreter; parse time per fixture, per GPU it lists, and for a large
synthetic node; the end-to-end overhead of each public listing over a bare subprocess call of the same binary
(the simulator's stand-in for both); the nvidia-smi calls each plan makes against the minimum. Each row states
its target. The listings are the registry's (smimig.commands): every one is timed, none is named here.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import smimig  # noqa: E402  # after the path is set, so the checkout's smimig is measured
import smimig.sim  # noqa: E402
from smimig import commands, parsers  # noqa: E402
from smimig.runner import SubprocessRunner  # noqa: E402
from smimig.sim import SimulatedRunner  # noqa: E402
from tests.fixtures import FIXTURES, cases  # noqa: E402  # the fixtures' reader the parser tests use

IMPORT_TARGET_MS = 25.0
PARSE_TARGET_US = 300.0  # per GPU a table lists
OVERHEAD_TARGET = 1.05
START_TARGET = 1.15
FLOOR = "import attrs, tabulate, parse"  # the design card's dependencies: what any Python CLI on them pays


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    from tabulate import tabulate

    print(f"\n## {title}\n")
    print(tabulate(rows, headers=header, tablefmt="github", floatfmt=".3g", disable_numparse=True))
    sys.stdout.flush()


def median_of(function: Callable[[], object], repeat: int) -> float:
    """Median seconds per call of ``function``, each sample over enough calls to last ~20 ms."""
    timer = timeit.Timer(function)
    number, _ = timer.autorange()
    number = max(1, number // 10)
    return statistics.median(timer.repeat(repeat=repeat, number=number)) / number


# -- the command line against its dependencies -----------------------------------------------------------


def _stand_in(path: Path, answers: dict[tuple[str, ...], str]) -> Path:
    """A shell script that answers each of nvidia-smi's argument lists with a recording, printed by the shell's
    own printf: an nvidia-smi that answers at once, for one shell start a call."""
    cases = "".join(
        f"  {shlex.quote(' '.join(args))}) printf '%s' {shlex.quote(text)} ;;\n" for args, text in answers.items()
    )
    path.write_text(f'#!/bin/sh\ncase "$*" in\n{cases}  *) echo "unexpected: $*" >&2; exit 2 ;;\nesac\n')
    path.chmod(0o755)
    return path


def _nodes() -> dict[str, dict[tuple[str, ...], str]]:
    """Two recorded nodes, each read's answer by its arguments: the seed's four A30s (driver 545) with GPU 0 in
    MIG mode, two GPU instances and four compute instances (its MIG mode query, not recorded, made from its
    bus ids), and the H100 of the driver 580 captures, MIG off."""
    a30, h100 = FIXTURES / "a30-driver545", FIXTURES / "h100-80gb-driver580"
    modes = "".join(
        f"{gpu}, 00000000:{bus}:00.0, {mode}, {mode}\n"
        for gpu, (bus, mode) in enumerate(
            (("17", "Enabled"), ("65", "Disabled"), ("CA", "Disabled"), ("E3", "Disabled"))
        )
    )
    return {
        "A30 x4, MIG on": {
            tuple(commands.GPUS.argv()): (a30 / "L-four-cis.txt").read_text(encoding="utf-8"),
            tuple(commands.MIG_MODE.argv()): modes,
            tuple(commands.GIS.argv()): (a30 / "lgi-again.txt").read_text(encoding="utf-8"),
            tuple(commands.CIS.argv()): (a30 / "lci.txt").read_text(encoding="utf-8"),
            tuple(commands.GI_PROFILES.argv()): (a30 / "lgip.txt").read_text(encoding="utf-8"),
            tuple(commands.GI_PLACEMENTS.argv()): (a30 / "lgipp.txt").read_text(encoding="utf-8"),
            # The seed kept only the table's MIG devices box; status reads its Processes box too (the slice
            # maps mark busy instances): the H100's recorded one ("No running processes found") stands in.
            tuple(commands.MIG_DEVICES.argv()): (a30 / "table-four-cis-mig-section.txt").read_text(encoding="utf-8")
            + "\n"
            + _processes_box((h100 / "table.stdout").read_text(encoding="utf-8")),
        },
        "H100, MIG off": {
            tuple(commands.GPUS.argv()): (h100 / "L.stdout").read_text(encoding="utf-8"),
            tuple(commands.MIG_MODE.argv()): "0, 00000000:00:06.0, Disabled, Disabled\n",
            tuple(commands.GIS.argv()): (h100 / "lgi.stdout").read_text(encoding="utf-8"),
            tuple(commands.CIS.argv()): (h100 / "lci.stdout").read_text(encoding="utf-8"),
            tuple(commands.GI_PROFILES.argv()): (h100 / "lgip.stdout").read_text(encoding="utf-8"),
            tuple(commands.GI_PLACEMENTS.argv()): (h100 / "lgipp.stdout").read_text(encoding="utf-8"),
            tuple(commands.MIG_DEVICES.argv()): (h100 / "table.stdout").read_text(encoding="utf-8"),
        },
    }


def _processes_box(table: str) -> str:
    """The "Processes:" box of a plain nvidia-smi table (its last box)."""
    lines = table.rstrip("\n").splitlines()
    start = max(i for i, line in enumerate(lines) if line.startswith("| Processes:")) - 1
    return "\n".join(lines[start:]) + "\n"


def _run_timed(argv: Sequence[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of one whole process: its own CPU and its children's, from the kernel's account."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait for it again
    if process.returncode != 0:
        failed = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        raise RuntimeError(f"{shlex.join(argv)} exited with {process.returncode}: {failed.stderr.strip()}")
    return wall, usage.ru_utime + usage.ru_stime


def _installed() -> tuple[Path | None, str]:
    """The console script beside this interpreter, and how its package is installed."""
    script = Path(sys.executable).parent / "smimig"
    if not script.exists():
        return None, "no smimig console script beside this interpreter: pip install . first"
    try:
        from importlib import metadata

        direct = metadata.distribution("smimig").read_text("direct_url.json") or "{}"
    except Exception:  # any doubt about how it was installed is only a note
        return script, "installed: unknown how"
    editable = json.loads(direct).get("dir_info", {}).get("editable", False)
    return (
        script,
        "an editable install: slower to start than the plain pip install . the target is set for"
        if editable
        else "a plain install",
    )


def command_starts(runs: int) -> None:
    """Each command as a shell user runs it, whole process, against the dependency floor, interleaved."""
    script, how = _installed()
    if script is None:
        print(f"\n## The smimig command against its dependencies\n\n(skipped: {how})")
        return
    floor = [sys.executable, "-c", FLOOR]
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        stand_ins = {
            node: _stand_in(Path(directory) / f"nvidia-smi-{number}", answers)
            for number, (node, answers) in enumerate(_nodes().items())
        }
        a30, h100 = stand_ins.values()
        for label, args, stand_in, node in (
            ("smimig gis", ["gis"], a30, "A30 x4, MIG on"),
            ("smimig gpus", ["gpus"], a30, "A30 x4, MIG on"),
            ("smimig status", ["status"], a30, "A30 x4, MIG on"),
            ("smimig status", ["status"], h100, "H100, MIG off"),
            ("smimig --help", ["--help"], a30, "-"),
        ):
            # A node lock (and lease ledger) of its own: none of this machine's leases to mark on the maps.
            lock = str(Path(directory) / "node.lock")
            env = {**os.environ, "SMIMIG_NVIDIA_SMI": str(stand_in), "SMIMIG_LOCK_FILE": lock}
            command = [str(script), *args]
            _run_timed(floor, env)
            _run_timed(command, env)  # warm-up: the page cache, not the measure
            floors, smimigs, wall_ratios, cpu_ratios = [], [], [], []
            for number in range(runs):  # interleaved pairs, each side first in turn: drift hits both alike
                pair = (floor, command) if number % 2 == 0 else (command, floor)
                first, second = (_run_timed(argv, env) for argv in pair)
                (floor_wall, floor_cpu), (own_wall, own_cpu) = (first, second) if number % 2 == 0 else (second, first)
                floors.append(floor_wall)
                smimigs.append(own_wall)
                wall_ratios.append(own_wall / floor_wall)
                cpu_ratios.append(own_cpu / floor_cpu)
            ratio = statistics.median(wall_ratios)
            needless = _needless_modules(args, env, directory)
            rows.append(
                [
                    label,
                    node,
                    f"{statistics.median(floors) * 1000:.0f}",
                    f"{statistics.median(smimigs) * 1000:.0f}",
                    f"{ratio:.2f}",
                    f"{statistics.median(cpu_ratios):.2f}",
                    "ok" if ratio <= START_TARGET else "MISSED",
                    needless or "none",
                ]
            )
    table(
        f"The smimig command against its dependencies: whole process, ms, median of {runs} interleaved pairs with "
        f'`python -c "{FLOOR}"`; nvidia-smi is a stand-in printing the node\'s recordings at once '
        f"({script}: {how}; target <= {START_TARGET}x). Last column: modules the command loads that it does not "
        "need (target: none)",
        ["command", "node", "floor", "smimig", "ratio (wall)", "ratio (CPU)", "target", "needless modules loaded"],
        rows,
    )


# Modules a listing, status or --help has no use for: each costs start-up (importlib.metadata alone, loaded by
# tabulate to read its own version, is a third of the floor).
_NEEDLESS = (
    "tabulate",
    "parse",
    "importlib.metadata",
    "concurrent.futures",
    "logging",
    "json",
    "pathlib",
    "shutil",
    "html",
    "yaml",
    "smimig.changes",
    "smimig.parsers.messages",
    "smimig.planner",
    "smimig.layout",
    "smimig.leasing",
    "smimig.ledger",
    "smimig.locking",
    "smimig.jobs",
    "smimig.sim",
)


def _needless_modules(args: Sequence[str], env: dict[str, str], directory: str) -> str:
    """The modules of :data:`_NEEDLESS` that ``smimig ARGS`` loads, run in process by the installed package."""
    code = (
        "import contextlib, io, sys\n"
        "from smimig.cli import main\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        f"    main({list(args)!r})\n"
        f"print(' '.join(m for m in {_NEEDLESS!r} if m in sys.modules))\n"
    )
    # In a directory of its own, so that the installed smimig is imported, not a checkout's.
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=directory, check=True
    )
    return run.stdout.strip()


# -- import ---------------------------------------------------------------------------------------


def import_times(runs: int) -> None:
    def importtime(statement: str, module: str) -> float:
        samples = []
        for _ in range(runs):
            result = subprocess.run(
                [sys.executable, "-X", "importtime", "-c", statement],
                capture_output=True,
                text=True,
                check=True,
                cwd=ROOT,
            )
            line = next(
                line
                for line in result.stderr.splitlines()
                if line.count("|") == 2 and line.split("|")[2].strip() == module
            )
            samples.append(int(line.split("|")[1]) / 1000)
        return statistics.median(samples)

    def wall(statement: str) -> float:
        samples = []
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", statement], check=True, cwd=ROOT)
            samples.append((time.perf_counter() - start) * 1000)
        return statistics.median(samples)

    def in_process(statement: str) -> float:
        code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
        samples = []
        for _ in range(runs):
            result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
            samples.append(float(result.stdout) * 1000)
        return statistics.median(samples)

    bare = wall("pass")
    first_use = "import smimig; smimig.Smi; smimig.list_gis"
    rows = [
        ["import smimig (-X importtime, cumulative)", f"{importtime('import smimig', 'smimig'):.1f}", IMPORT_TARGET_MS],
        [f"{first_use} (loads the listing API)", f"{in_process(first_use):.1f}", "-"],
        ["import smimig.cli (what the smimig command loads)", f"{in_process('import smimig.cli'):.1f}", "-"],
        ["python -c 'import smimig' over python -c pass (wall)", f"{wall('import smimig') - bare:.1f}", "-"],
        ["python -c pass (wall, for scale)", f"{bare:.1f}", "-"],
    ]
    heavy = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, smimig; smimig.Smi; print(' '.join(m for m in ('tabulate', 'yaml', 'smimig.sim', "
            "'smimig.planner', 'smimig.cli') if m in sys.modules) or 'none')",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout.strip()
    rows.append(["heavy modules loaded by import smimig; smimig.Smi", heavy, "none"])
    table(f"Import time, ms (median of {runs} fresh processes)", ["what", "ms", "target"], rows)


# -- parsing --------------------------------------------------------------------------------------


def _gpus_listed(result: object) -> int | None:
    """How many GPUs a parsed listing is about (None for a change's output): the parse target is per GPU."""
    if not isinstance(result, list):
        return None
    return max(1, len({getattr(row, "gpu", getattr(row, "index", None)) for row in result}))


def parse_times(repeat: int) -> None:
    """Each registry listing over each fixture of its parser, then the changes' parsers over theirs."""
    listing_of = {command.parser.__name__: command.name for command in commands.COMMANDS}
    position = {parser: number for number, parser in enumerate(listing_of)}
    ordered = sorted(cases(), key=lambda case: (position.get(case.parser, len(position)), case.parser, case.id))
    rows = []
    for case in ordered:
        function = partial(getattr(parsers, case.parser), case.text, **case.options)
        micro = median_of(function, repeat) * 1e6
        gpus = _gpus_listed(function())
        recorded = "synthetic" if "synthetic" in case.path.parts else "recorded"
        per_gpu = "-" if gpus is None else f"{micro / gpus:.1f}"
        verdict = "-" if gpus is None else "ok" if micro / gpus < PARSE_TARGET_US else "MISSED"
        listing = listing_of.get(case.parser, "(a change)")
        rows.append([listing, case.id, recorded, f"{micro:.1f}", gpus or "-", per_gpu, verdict])
    table(
        f"Parse time per fixture, µs per call and per GPU the table lists (median of {repeat}; target "
        f"< {PARSE_TARGET_US:.0f} µs per GPU, for every table)",
        ["listing", "parser:fixture", "", "µs", "GPUs", "µs per GPU", "target"],
        rows,
    )


def large_node(gpus: int) -> SimulatedRunner:
    """A100-40GB GPUs, each with seven 1g.5gb GPU instances and a compute instance in each."""
    runner = SimulatedRunner("A100-40GB", gpus=gpus, mig=True)
    smi = smimig.Smi(runner=runner)
    for gpu in range(gpus):
        smi.create_gi(gpu, ["1g.5gb"] * 7, ci=True)
    return runner


def scaling(repeat: int) -> None:
    one, eight = large_node(1), large_node(8)
    rows = []
    for command in commands.COMMANDS:
        name, args, parser = command.name, command.argv(), command.parser
        small_text, big_text = one.run(args).stdout, eight.run(args).stdout
        small_timer = timeit.Timer(lambda parser=parser, text=small_text: parser(text))
        big_timer = timeit.Timer(lambda parser=parser, text=big_text: parser(text))
        small_number = max(1, small_timer.autorange()[0] // 10)
        big_number = max(1, big_timer.autorange()[0] // 10)
        smalls, bigs = [], []
        for _ in range(repeat):  # interleaved, so a noisy moment hits both sizes alike
            smalls.append(small_timer.timeit(small_number) / small_number)
            bigs.append(big_timer.timeit(big_number) / big_number)
        small, big = statistics.median(smalls) * 1e6, statistics.median(bigs) * 1e6
        ratio = statistics.median(b / s for s, b in zip(smalls, bigs))
        count = len(parser(big_text))
        rows.append([name, count, f"{small:.1f}", f"{big:.1f}", f"{ratio:.2f}", "ok" if ratio <= 8 else "MISSED"])
    table(
        "Parse time on a large node: 8 GPUs x 7 GIs x 1 CI (56 MIG devices) against 1 GPU, µs "
        "(target: 8 GPUs no worse than 8x one GPU)",
        ["listing", "rows (8 GPUs)", "1 GPU", "8 GPUs", "ratio", "target"],
        rows,
    )


# -- end to end -------------------------------------------------------------------------------------


def overhead(runs: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        state = Path(directory) / "node.json"
        env = {**os.environ, "SMIMIG_SIM_STATE": str(state), "SMIMIG_SIM_MODEL": "A30x4"}
        os.environ.update({"SMIMIG_SIM_STATE": str(state), "SMIMIG_SIM_MODEL": "A30x4"})
        stand_in = Path(directory) / "nvidia-smi"
        stand_in.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m smimig.sim "$@"\n')
        stand_in.chmod(0o755)
        smi = smimig.Smi(runner=SubprocessRunner(str(stand_in)))
        smi.enable_mig(0)
        smi.create_gi(0, ["2g.12gb", "1g.6gb", "1g.6gb"], ci=True)
        rows = []
        for command in commands.COMMANDS:  # each through its public method, as a user calls it
            name, args = command.method, command.argv()
            call: Callable[[], object] = getattr(smi, name)
            bare_samples, api_samples, ratios = [], [], []
            for _ in range(runs):  # interleaved pairs, so drift hits both alike; the ratio is taken per pair
                start = time.perf_counter()
                completed = subprocess.run([str(stand_in), *args], capture_output=True, text=True, env=env, check=False)
                bare_samples.append(time.perf_counter() - start)
                start = time.perf_counter()
                call()
                api_samples.append(time.perf_counter() - start)
                ratios.append(api_samples[-1] / bare_samples[-1])
            canned = smimig.Smi(runner=_Canned(completed.returncode, completed.stdout, completed.stderr))
            own = median_of(lambda canned=canned, name=name: getattr(canned, name)(), 5) * 1000
            bare, api = statistics.median(bare_samples) * 1000, statistics.median(api_samples) * 1000
            ratio = statistics.median(ratios)
            computed = (bare + own) / bare
            rows.append(
                [
                    name,
                    f"{bare:.1f}",
                    f"{api:.1f}",
                    f"{ratio:.3f}",
                    f"{own:.3f}",
                    f"{computed:.4f}",
                    "ok" if computed <= OVERHEAD_TARGET else "MISSED",
                ]
            )
        table(
            f"End to end: public listing vs the bare subprocess call of the same binary, ms (median of {runs} "
            f"interleaved pairs; target <= {OVERHEAD_TARGET}x). 'smimig's own cost' is the same call on a runner "
            "that returns the recorded output without a process: what smimig adds, free of process-start noise",
            [
                "call",
                "bare subprocess",
                "smimig",
                "ratio (median of pairs)",
                "smimig's own cost",
                "bare + own / bare",
                "target",
            ],
            rows,
        )


class _Canned:
    """A runner that answers every call with one recorded result, to time smimig's own work alone."""

    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.result = (returncode, stdout, stderr)

    def run(self, args: Sequence[str]) -> Any:
        from smimig.runner import RunResult

        return RunResult(("nvidia-smi", *args), *self.result)


class _Delayed:
    """The in-process simulator, each call pausing 25-40 ms like a real nvidia-smi call (no CPU used)."""

    def __init__(self, runner: Any) -> None:
        import random
        import threading

        self.runner, self.random, self.lock = runner, random.Random(7), threading.Lock()  # noqa: S311  # pauses

    def run(self, args: Sequence[str]) -> Any:
        with self.lock:
            pause = self.random.uniform(0.025, 0.040)
        time.sleep(pause)
        return self.runner.run(args)


def concurrent_status(runs: int) -> None:
    node = large_node(8)
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        state = Path(directory) / "node.json"
        smimig.sim.StateFileRunner(state, "A100-40GB", 8).change(lambda n: setattr(n, "gpus", node.node.gpus))
        stand_in = Path(directory) / "nvidia-smi"
        stand_in.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m smimig.sim "$@"\n')
        stand_in.chmod(0o755)
        os.environ.update({"SMIMIG_SIM_STATE": str(state), "SMIMIG_SIM_DELAY": "0.025-0.040"})
        try:
            for label, runner in (
                ("stand-in binary, 25-40 ms pause a call", SubprocessRunner(str(stand_in))),
                ("in-process simulator, 25-40 ms pause a call", _Delayed(node)),
            ):
                sequential = smimig.Smi(runner=runner, max_workers=1)
                concurrent = smimig.Smi(runner=runner)
                singles = [
                    sequential.list_gpus,
                    sequential.mig_mode,
                    sequential.list_gis,
                    sequential.list_cis,
                    sequential.list_gi_profiles,
                    sequential.list_mig_devices,
                ]

                def timed(call: Callable[[], object]) -> float:
                    samples = []
                    for _ in range(runs):
                        start = time.perf_counter()
                        call()
                        samples.append((time.perf_counter() - start) * 1000)
                    return statistics.median(samples)

                slowest = max(timed(call) for call in singles)
                one_by_one, at_once = timed(sequential.status), timed(concurrent.status)
                ratio = at_once / slowest
                rows.append(
                    [
                        label,
                        f"{slowest:.0f}",
                        f"{one_by_one:.0f}",
                        f"{at_once:.0f}",
                        f"{ratio:.2f}",
                        "ok" if ratio <= 1.5 else "MISSED",
                    ]
                )
        finally:
            os.environ.pop("SMIMIG_SIM_DELAY", None)
    table(
        f"status on an 8-GPU node: its six reads one by one vs at once, ms (median of {runs}; "
        "target: at once within 1.5x of the slowest single read)",
        ["runner", "slowest single read", "one by one", "at once", "at once / slowest", "target"],
        rows,
    )


# -- apply -----------------------------------------------------------------------------------------


class Counting:
    def __init__(self, runner: Any) -> None:
        self.runner, self.calls = runner, []  # type: ignore[var-annotated]

    def run(self, args: Sequence[str]) -> Any:
        self.calls.append(list(args))
        return self.runner.run(args)


def apply_calls() -> None:
    mutating = ("-cgi", "-cci", "-dci", "-dgi", "-mig")
    cases = [
        ("A100-40GB x1, empty -> 4g+2g+1g", "A100-40GB", 1, [], {0: ["4g.20gb", "2g.10gb", "1g.5gb"]}, 1),
        ("A100-40GB x2, empty -> 7 x 1g on each", "A100-40GB", 2, [], {0: ["1g.5gb"] * 7, 1: ["1g.5gb"] * 7}, 2),
        ("A30 x4, empty -> 2g+1g+1g on GPU 0", "A30", 4, [], {0: ["2g.12gb", "1g.6gb", "1g.6gb"]}, 1),
        (
            "A100-40GB x1, 4g+2g+1g -> 4g+1g+1g+1g (keep 4g, 1g)",
            "A100-40GB",
            1,
            [(0, ["4g.20gb", "2g.10gb", "1g.5gb"])],
            {0: ["4g.20gb", "1g.5gb", "1g.5gb", "1g.5gb"]},
            3,
        ),
        (
            "H100 x1, custom CIs in a 3g.40gb",
            "H100-80GB",
            1,
            [],
            {0: [{"profile": "3g.40gb", "cis": ["2c.3g.40gb", "1c.3g.40gb"]}, "3g.40gb"]},
            3,
        ),
        (
            "A30 x4, the same layout again",
            "A30",
            4,
            [(0, ["2g.12gb", "1g.6gb", "1g.6gb"])],
            {0: ["2g.12gb", "1g.6gb", "1g.6gb"]},
            0,
        ),
    ]
    rows = []
    for name, model, gpus, before, wanted, minimum in cases:
        counting = Counting(SimulatedRunner(model, gpus=gpus, mig=True))
        smi = smimig.Smi(runner=counting)
        for gpu, profiles in before:
            smi.create_gi(gpu, profiles, ci=True)
        counting.calls.clear()
        result = smi.apply(smimig.Layout.from_dict(wanted))
        changes = sum(1 for call in counting.calls if any(option in call for option in mutating))
        reads = len(counting.calls) - changes
        rows.append([name, result.plan.reads, changes, minimum, "ok" if changes <= minimum else "MORE", reads])
    table(
        "apply: nvidia-smi calls per plan (mutating calls against the fewest possible)",
        ["layout", "reads to plan", "mutating calls", "minimum", "", "all reads (plan, verify, export)"],
        rows,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (CI)")
    parser.add_argument("--only", nargs="+", choices=sorted(SECTIONS), help="run these sections only")
    options = parser.parse_args(argv)
    runs, repeat = (5, 5) if options.quick else (11, 9)
    print(f"# smimig {smimig.__version__} benchmarks — Python {sys.version.split()[0]} on {sys.platform}")
    for name, section in SECTIONS.items():
        if options.only is None or name in options.only:
            section(runs, repeat)
    return 0


SECTIONS: dict[str, Callable[[int, int], None]] = {
    "start": lambda runs, _: command_starts(2 * runs - 1),  # whole processes are noisier: twice the pairs
    "import": lambda runs, _: import_times(runs),
    "parse": lambda _, repeat: parse_times(repeat),
    "scaling": lambda _, repeat: scaling(repeat),
    "overhead": lambda runs, _: overhead(runs),
    "status": lambda runs, _: concurrent_status(runs),
    "apply": lambda _runs, _repeat: apply_calls(),
}


if __name__ == "__main__":
    raise SystemExit(main())
