"""The root of every error this package raises, and the errors of the client's own making: a setting, an
ID set, the network, a time bound. No secret (key, token, signature) is ever part of an error.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

__all__ = [
    "ConfigurationError",
    "EnosError",
    "InvalidIdsError",
    "OperationTimeoutError",
    "TransportError",
    "TransportKind",
]


class EnosError(Exception):
    """Root of every error this package raises."""

    def __reduce__(self) -> tuple[Any, ...]:
        # Subclasses take keyword-only or several arguments, so copies and pickles (e.g. across a process
        # pool) are rebuilt without __init__: the text (with any appended note) and the attributes.
        return (_restore, (type(self), self.args, dict(self.__dict__)))

    def append_to_message(self, note: str) -> None:
        # Part of str(), not an exception note: the Pulumi host shows the text, and Python 3.10 has
        # no add_note.
        self.args = (f"{self.args[0] if self.args else ''} {note}".strip(), *self.args[1:])


class ConfigurationError(EnosError, ValueError):
    """A connection setting is missing or invalid (names the stack config key and the variable)."""


class InvalidIdsError(EnosError, ValueError):
    """An asset or point ID input is unusable; ``input_name`` is the resource input to fix."""

    def __init__(self, input_name: str, reason: str) -> None:
        super().__init__(f"{input_name}: {reason}")
        self.input_name = input_name
        self.reason = reason


class TransportKind(str, Enum):
    """What kind of transport failure a :class:`TransportError` is (its ``kind``).

    A ``str`` enum: a kind equals its text (``error.kind == "timeout"``), and shows as it.
    """

    DNS = "dns"
    REFUSED = "refused"
    CONNECT_TIMEOUT = "connect-timeout"
    #: No complete answer within the attempt's bound, or no data within the read timeout.
    TIMEOUT = "timeout"
    TLS = "tls"
    #: The connection failed, or closed, before a complete answer.
    CLOSED = "closed"
    #: The answer was larger than the size cap.
    TOO_LARGE = "too-large"
    #: The request went out; its answer could not be read.
    BAD_ANSWER = "bad-answer"
    #: The request could not be made (it would fail the same way again).
    INVALID = "invalid"
    UNCLASSIFIED = ""

    def __str__(self) -> str:
        return str(self.value)


class TransportError(EnosError):
    """No usable HTTP answer (connection refused or dropped, timeout, TLS) even after retrying.

    ``detail`` is our own wording, never the HTTP stack's text (which can quote header values).
    """

    def __init__(
        self,
        operation: str,
        detail: str,
        target: str = "",
        *,
        retryable: bool = True,
        kind: TransportKind = TransportKind.UNCLASSIFIED,
    ) -> None:
        where = f" for {target}" if target else ""
        super().__init__(f"{operation} failed{where}: {detail}")
        self.operation = operation
        self.detail = detail
        self.target = target
        #: False for failures that another attempt cannot mend (a TLS certificate problem, a bad URL).
        self.retryable = retryable
        #: What went wrong, for callers that treat kinds differently.
        self.kind = TransportKind(kind)


class OperationTimeoutError(EnosError):
    """A whole operation (a reset's requests, a status wait) ran past its stated bound."""

    def __init__(self, operation: str, target: str, timeout: float, setting: str, progress: str = "") -> None:
        where = f" for {target}" if target else ""
        done = f"; {progress}" if progress else ""
        super().__init__(
            f"{operation} gave up{where}: it ran past its bound of {timeout:g} s ({setting}){done}"
        )
        self.operation = operation
        self.target = target
        self.timeout = timeout
        self.setting = setting


def _restore(cls: type[EnosError], args: tuple[Any, ...], state: dict[str, Any]) -> EnosError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error
