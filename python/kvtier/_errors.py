"""kvtier's exceptions: every failure of a call is one of them, never a crash."""

from __future__ import annotations

import contextlib
from typing import Iterator, Optional

from . import _native


class Error(Exception):
    """A kvtier call failed. ``message`` is kvtier's whole message (as the CLI prints it);
    ``file``, ``line`` and ``column`` say where the problem is when kvtier knows (1-based;
    ``None`` otherwise). A script given as text is named ``<name>``, a built-in one
    ``<built-in>/policies/...``."""

    def __init__(
        self,
        message: str,
        file: Optional[str] = None,
        line: Optional[int] = None,
        column: Optional[int] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        # A compare or sweep that raised keeps its whole table here.
        self.frame = None


class ScenarioError(Error, ValueError):
    """A scenario (file, dict or ``with_`` change) is not valid."""


class PolicyError(Error):
    """A strategy could not be found or compiled, or failed while it ran (a runtime error, or
    more operations than its budget: an endless loop)."""


_CLASSES = {"scenario": ScenarioError, "policy": PolicyError, "error": Error}


def _make(kind: str, message: str, file, line, column) -> Error:
    return _CLASSES.get(kind, Error)(message, file, line, column)


def _from_message(text: str) -> Error:
    """The exception of an error row's text (a failed pair of a compare or a sweep)."""
    kind, file, line, column = _native.classify(text)
    return _make(kind, text, file, line, column)


@contextlib.contextmanager
def _reraise() -> Iterator[None]:
    """Turns the native module's error into the package's exception class."""
    try:
        yield
    except _native.NativeError as e:
        raise _make(*e.args) from None
