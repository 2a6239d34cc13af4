"""Every ``>>>`` example in smimig's docstrings and every ```python block of README.md runs here, against the
simulator, so an example cannot drift from the code it shows.

Each example starts from a fresh simulated node, and smimig's module-level functions (``smimig.list_gis()``
…) talk to it. Unless ``STARTS`` names another starting point, that node is the seed's: four A30s at the
end of the seed's walk-through (what ``examples/walkthrough.ipynb`` builds): GPU 0 in MIG mode with GPU
instances 1 and 2 (``2g.12gb``), each holding two ``1c.2g.12gb`` compute instances. An example that shows
a change needs the node as it was before the change: add its name to ``STARTS``.

The examples run in a temporary directory holding a ``train.py`` that prints the device it was given, with
this interpreter first on PATH, so ``["python", "train.py"]`` runs as shown. Output is compared with
``ELLIPSIS`` and ``NORMALIZE_WHITESPACE``: ``...`` stands for any text (a UUID, the rest of a list), and a
long result may be wrapped over several lines. An example that cannot run here (it needs a real host) says
``# doctest: +SKIP``.
"""

from __future__ import annotations

import copy
import doctest
import importlib
import os
import pkgutil
import re
import sys
import types
from pathlib import Path
from typing import Callable

import pytest

import smimig
import smimig.client
from smimig.sim import SimulatedRunner

README = Path(__file__).resolve().parent.parent / "README.md"
OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
TRAIN_PY = "import os\nprint('training on', os.environ['CUDA_VISIBLE_DEVICES'])\n"


# -- the nodes the examples start from -----------------------------------------------------------------


def fresh() -> SimulatedRunner:
    """Four A30s, MIG off: the seed's node before its walk-through."""
    return SimulatedRunner("A30", gpus=4)


def mig_on() -> SimulatedRunner:
    """The seed's node with MIG on for GPU 0 and nothing carved yet."""
    runner = fresh()
    smimig.Smi(runner=runner).enable_mig(0)
    return runner


def gis_without_cis() -> SimulatedRunner:
    """GPU 0 holds GPU instances 1 and 2 (``2g.12gb``) with no compute instance yet."""
    runner = mig_on()
    smimig.Smi(runner=runner).create_gi(0, ["5", "5"])
    return runner


def seed() -> SimulatedRunner:
    """The end of the seed's walk-through: two ``1c.2g.12gb`` compute instances in each GPU instance."""
    runner = gis_without_cis()
    smi = smimig.Smi(runner=runner)
    smi.create_ci(0, 1, ["0", "0"])
    smi.create_ci(0, 2, ["0", "0"])
    return runner


def a100_mig_on() -> SimulatedRunner:
    """One A100 40GB in MIG mode with nothing carved: room for the ``1g.10gb`` the lease examples ask for."""
    return SimulatedRunner("A100-40GB", gpus=1, mig=True)


STARTS: dict[str, Callable[[], SimulatedRunner]] = {
    "smimig.client.Smi.enable_mig": fresh,
    "smimig.client.Smi.create_gi": mig_on,
    "smimig.client.Smi.create_ci": gis_without_cis,
    "smimig.client.Smi.destroy_gi": gis_without_cis,
    "smimig.leasing": a100_mig_on,
    "README.md, Changing MIG state": fresh,
    "README.md, Changing MIG state #2": mig_on,
    "README.md, Shared nodes": a100_mig_on,
}
"""Examples that do not start from the seed's node (:func:`seed`), by name (a docstring's qualified name;
README blocks by their heading, ``#2`` for the second block under one heading)."""


# -- finding the examples -------------------------------------------------------------------------------


def smimig_modules() -> list[types.ModuleType]:
    names = ["smimig", *(info.name for info in pkgutil.walk_packages(smimig.__path__, "smimig."))]
    return [importlib.import_module(name) for name in sorted(names) if not name.endswith("__main__")]


def docstring_examples() -> list[doctest.DocTest]:
    finder = doctest.DocTestFinder(exclude_empty=True)
    found = [test for module in smimig_modules() for test in finder.find(module) if test.examples]
    return sorted(found, key=lambda test: test.name)


def readme_examples(text: str | None = None) -> list[doctest.DocTest]:
    """One doctest per ```python block of README.md, named after the heading it sits under."""
    lines = (README.read_text(encoding="utf-8") if text is None else text).splitlines(keepends=True)
    found: list[doctest.DocTest] = []
    heading, blocks_under_heading, start = "README.md", 0, None
    for number, line in enumerate(lines):
        if start is None and re.match(r"#{1,4} ", line):
            heading, blocks_under_heading = line.lstrip("#").strip(), 0
        elif start is None and line.rstrip() == "```python":
            start = number + 1
        elif start is not None and line.rstrip() == "```":
            blocks_under_heading += 1
            name = f"README.md, {heading}" + (f" #{blocks_under_heading}" if blocks_under_heading > 1 else "")
            block = "".join(lines[start:number])
            found.append(doctest.DocTestParser().get_doctest(block, {}, name, str(README), start))
            start = None
    return found


EXAMPLES = [*docstring_examples(), *readme_examples()]


# -- running them ---------------------------------------------------------------------------------------


@pytest.fixture
def default_node(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Callable[[SimulatedRunner], smimig.Smi]:
    """Point smimig's module-level functions at a simulated node, in a directory with a ``train.py``."""
    (tmp_path / "train.py").write_text(TRAIN_PY)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("SMIMIG_LOCK_FILE", str(tmp_path / "smimig.lock"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # smimig.simulate()'s nodes live there

    def use(runner: SimulatedRunner) -> smimig.Smi:
        smi = smimig.Smi(runner=runner)
        # The default client behind smimig.list_gis() & co., swapped for this test and put back after it.
        previous = smimig.use(smi)
        request.addfinalizer(lambda: smimig.use(previous))
        return smi

    return use


def run_example(test: doctest.DocTest) -> tuple[int, str]:
    """Run one doctest on a copy of its namespace (with ``smimig`` in it); the failures and their report."""
    test = copy.copy(test)
    test.globs = {**test.globs, "smimig": smimig}
    report: list[str] = []
    runner = doctest.DocTestRunner(optionflags=OPTIONS)
    runner.run(test, out=report.append)
    return runner.failures, "".join(report)


@pytest.mark.parametrize("test", EXAMPLES, ids=[test.name for test in EXAMPLES])
def test_example_runs(test: doctest.DocTest, default_node: Callable[[SimulatedRunner], smimig.Smi]) -> None:
    default_node(STARTS.get(test.name, seed)())
    failures, report = run_example(test)
    assert failures == 0, report


def test_examples_are_found() -> None:
    names = {test.name for test in EXAMPLES}
    assert {"smimig", "smimig.client.Smi.list_gis", "smimig.testing", "README.md, Changing MIG state"} <= names
    assert set(STARTS) <= names, "STARTS names an example that no longer exists"


def test_every_python_block_of_the_readme_is_a_session() -> None:
    """A ```python block without ``>>>`` would run nothing here: the README writes them as sessions."""
    blocks = re.findall(r"^```python\n(.*?)^```$", README.read_text(encoding="utf-8"), flags=re.MULTILINE | re.DOTALL)
    assert len(blocks) == len(readme_examples())
    assert all(test.examples for test in readme_examples())


def test_a_wrong_example_fails() -> None:
    """The runner does compare: an example whose output is wrong is reported with what it printed."""
    (wrong,) = readme_examples("## Wrong\n\n```python\n>>> 1 + 1\n3\n```\n")
    failures, report = run_example(wrong)
    assert failures == 1
    assert "Expected:\n    3\nGot:\n    2" in report
