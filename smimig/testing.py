"""A runner for your own tests: nvidia-smi's answers from a table or a function, every call recorded.

As httpx ships ``MockTransport``, smimig ships :class:`FakeRunner`: give :class:`smimig.Smi` a runner that
answers the exact argument lists you expect, and your code under test runs unchanged, with no GPU, no
process and no patching. An argument list it has no answer for raises :class:`UnexpectedCommand`, so a test
that runs an unexpected command fails loudly instead of reading made-up output.

>>> import smimig
>>> from smimig.testing import FakeRunner
>>> runner = FakeRunner({("mig", "-i", "0", "-lgi"): "No GPU instances found: Not Found\\n"})
>>> smimig.Smi(runner=runner).list_gis(0)
[]
>>> runner.calls
[('mig', '-i', '0', '-lgi')]
>>> smimig.Smi(runner=runner).list_gis(1)
Traceback (most recent call last):
...
smimig.testing.UnexpectedCommand: FakeRunner has no answer for: nvidia-smi mig -i 1 -lgi

A function answers what a table cannot list: here the simulator, but for one listing that prints
something new (how a test sees the doctor report output it cannot parse):

>>> from smimig.sim import SimulatedRunner
>>> node = SimulatedRunner("A30", gpus=2)
>>> runner = FakeRunner({("mig", "-lgi"): (0, "something new\\n", "")}, handler=node.run)
>>> [gpu.index for gpu in smimig.Smi(runner=runner).list_gpus()]
[0, 1]
>>> smimig.Smi(runner=runner).list_gis()
Traceback (most recent call last):
...
smimig.errors.ParseError: ...
"""

from __future__ import annotations

import shlex
import threading
from collections.abc import Mapping, Sequence
from typing import Callable, Union

from smimig.runner import RunResult

__all__ = ["Answer", "FakeRunner", "Handler", "UnexpectedCommand"]

Answer = Union[str, tuple[int, str, str], RunResult, BaseException]
"""What nvidia-smi answers: its stdout (exit code 0, no stderr), ``(returncode, stdout, stderr)``, a whole
:class:`~smimig.runner.RunResult`, or an exception for the runner to raise (e.g.
:class:`~smimig.NvidiaSmiTimeout`, as :class:`~smimig.SubprocessRunner` raises it)."""

Handler = Callable[[tuple[str, ...]], Union[Answer, None]]
"""A function from nvidia-smi's arguments to an :data:`Answer`, or None when it has none."""


class UnexpectedCommand(AssertionError):
    """The code under test ran nvidia-smi with arguments the :class:`FakeRunner` has no answer for.

    An ``AssertionError``, so pytest reports it as the test's failure, and ``except SmimigError`` or
    ``except ValueError`` in the code under test never swallows it.

    Attributes:
        args_list: the arguments that had no answer (without the program name).
    """

    def __init__(self, args: tuple[str, ...]) -> None:
        super().__init__(f"FakeRunner has no answer for: {shlex.join(('nvidia-smi', *args))}")
        self.args_list = args


class FakeRunner:
    """A :class:`smimig.Runner` that answers from ``responses`` and ``handler`` and records every call.

    Args:
        responses: exact argument lists (without the program name, as tuples: ``("mig", "-i", "0", "-lgi")``)
            mapped to an :data:`Answer`.
        handler: called with the arguments (a tuple) when ``responses`` has no entry; it returns an
            :data:`Answer`, or None for "no answer". ``SimulatedRunner(...).run`` makes one: the fake then
            answers as the simulator does and records what was asked.

    Each call is appended to :attr:`calls` (also when it has no answer), then answered; with no answer it
    raises :class:`UnexpectedCommand` (an ``AssertionError``). Safe to share between threads, as
    :meth:`smimig.Smi.status` runs its reads at once.

    Attributes:
        calls: the arguments of every call, in the order they were made.
    """

    def __init__(
        self, responses: Mapping[tuple[str, ...], Answer] | None = None, handler: Handler | None = None
    ) -> None:
        self.responses: dict[tuple[str, ...], Answer] = {}
        for key, answer in (responses or {}).items():
            if isinstance(key, str) or not isinstance(key, Sequence):
                raise TypeError(f"responses are keyed by argument tuples such as ('mig', '-lgi'); got {key!r}")
            self.responses[tuple(key)] = answer
        self.handler = handler
        self.calls: list[tuple[str, ...]] = []
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FakeRunner({len(self.responses)} response(s), handler={self.handler!r})"

    def run(self, args: Sequence[str]) -> RunResult:
        """Record ``args`` and answer them; see the class docstring."""
        key = tuple(args)
        with self._lock:
            self.calls.append(key)
        answer = self.responses.get(key)
        if answer is None and self.handler is not None:
            answer = self.handler(key)
        if answer is None:
            raise UnexpectedCommand(key)
        if isinstance(answer, BaseException):
            raise answer
        if isinstance(answer, RunResult):
            return answer
        if isinstance(answer, str):
            return RunResult(("nvidia-smi", *key), 0, answer, "")
        returncode, stdout, stderr = answer
        return RunResult(("nvidia-smi", *key), returncode, stdout, stderr)
