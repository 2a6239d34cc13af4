"""One ``__repr__`` for smimig's attrs classes, written once rather than compiled for each class.

attrs compiles a ``__repr__`` for every class it makes: 0.09 ms a class, ~3 ms of each ``smimig status`` (the
35 classes it makes at start), a twentieth of the floor issue 17 measures against. smimig's classes are
declared ``@attrs.frozen(repr=False)`` (or ``define``) and inherit :class:`AttrsRepr`, whose ``__repr__`` prints
what attrs' own would: ``Gpu(index=0, name='NVIDIA A30', …)``, fields with ``repr=False`` left out, a field's
own ``repr=`` callable used, ``...`` for an object already being printed further up (a cycle).
``tests/test_repr.py`` checks it against attrs' for every class.

One difference, for a user's subclass declared ``repr=False`` itself: attrs would have it inherit the parent's
compiled repr, which prints the parent's fields only; this one prints the fields of the object's own class.
"""

from __future__ import annotations

import threading
from typing import Any

import attrs

__all__ = ["AttrsRepr"]

_printing = threading.local()


class AttrsRepr:
    """Base of smimig's attrs classes: their ``__repr__``, as attrs would have made it."""

    __slots__ = ()

    def __repr__(self) -> str:
        working: set[int] | None = getattr(_printing, "ids", None)
        if working is None:
            working = _printing.ids = set()
        if id(self) in working:
            return "..."
        working.add(id(self))
        try:
            fields: tuple[attrs.Attribute[Any], ...] = type(self).__attrs_attrs__  # type: ignore[attr-defined]
            parts = []
            for field in fields:
                if field.repr is False:
                    continue
                value = getattr(self, field.name) if field.init else getattr(self, field.name, attrs.NOTHING)
                parts.append(f"{field.name}={value!r}" if field.repr is True else f"{field.name}={field.repr(value)}")
            return f"{type(self).__qualname__.rsplit('>.', 1)[-1]}({', '.join(parts)})"
        finally:
            working.discard(id(self))
