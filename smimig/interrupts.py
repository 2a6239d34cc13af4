"""Signals while smimig changes the node: raised as exceptions, held back, or forwarded to a job.

A change cut short by a signal leaves the node half-changed (a GPU instance with no compute instance, half a
layout), so smimig decides what a signal does while it changes something:

* :func:`raising` turns SIGTERM (and SIGHUP) into :class:`~smimig.errors.Terminated`, as Python turns SIGINT
  into ``KeyboardInterrupt``: ``apply`` then rolls back, a lease is released, and the ``smimig`` command
  exits 128+N with one line on stderr.
* :func:`deferring` holds SIGINT, SIGTERM and SIGHUP back while something must not be cut short (apply's
  rollback, the undoing of a lease's half-made instance): a signal that arrives is recorded, and the caller
  raises it once it is done.
* :class:`smimig.jobs.JobGroup` forwards them to the jobs smimig started (``lease``, ``run --each``).

Only the main thread may install signal handlers, and Python runs them there: in any other thread these do
nothing (a signal reaches the main thread as it would without smimig). A signal that is ignored (``nohup``
ignores SIGHUP; a shell's ``&`` ignores SIGINT) stays ignored. The previous handlers are put back on exit.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterable, Iterator
from types import FrameType
from typing import Callable, Union

import attrs

from smimig._repr import AttrsRepr
from smimig.errors import Terminated

__all__ = ["Deferred", "Handler", "deferring", "exception_for", "install", "raising", "restore"]

Handler = Union[Callable[[int, Union[FrameType, None]], object], int, None]
"""What ``signal.getsignal`` returns: a function, ``SIG_DFL``/``SIG_IGN``, or None (set outside Python)."""


def exception_for(signum: int) -> BaseException:
    """The exception a signal stands for: ``KeyboardInterrupt`` for SIGINT, :class:`Terminated` otherwise.

    >>> exception_for(signal.SIGINT), exception_for(signal.SIGTERM)
    (KeyboardInterrupt(), Terminated(15))
    """
    return KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)


def install(signals: Iterable[int], handler: Callable[[int, FrameType | None], object]) -> dict[int, Handler]:
    """Install ``handler`` for each of ``signals`` that is not ignored, in the main thread only; return the
    handlers it replaced (for :func:`restore`), empty elsewhere."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous: dict[int, Handler] = {}
    for signum in signals:
        current = signal.getsignal(signum)
        if current is None or current == signal.SIG_IGN:  # ignored on purpose, or not Python's to change
            continue
        previous[signum] = current
        signal.signal(signum, handler)
    return previous


def restore(previous: dict[int, Handler]) -> None:
    """Put back the handlers :func:`install` replaced."""
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def _raise(signum: int, frame: FrameType | None) -> None:
    raise exception_for(signum)


@contextlib.contextmanager
def raising(*signals: int) -> Iterator[None]:
    """Within the block, each of ``signals`` raises :func:`exception_for` it (:class:`Terminated` for SIGTERM)."""
    previous = install(signals, _raise)
    try:
        yield
    finally:
        restore(previous)


@attrs.define(repr=False)
class Deferred(AttrsRepr):
    """The signal :func:`deferring` held back: the first one that arrived, or None."""

    received: int | None = None

    def exception(self) -> BaseException | None:
        """What the held-back signal would have raised (None when none arrived)."""
        return None if self.received is None else exception_for(self.received)


@contextlib.contextmanager
def deferring(*signals: int) -> Iterator[Deferred]:
    """Within the block, each of ``signals`` is only recorded (the first one, in the :class:`Deferred` yielded):
    nothing cuts the block short. Raising it afterwards is the caller's decision."""
    deferred = Deferred()

    def hold(signum: int, frame: FrameType | None) -> None:
        if deferred.received is None:
            deferred.received = signum

    previous = install(signals, hold)
    try:
        yield deferred
    finally:
        restore(previous)
