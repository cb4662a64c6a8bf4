"""How error text quotes a value the user gave: as Python writes it (escapes visible), or, for a value the
program marked secret, not at all.

Every check that quotes a value (or part of one: a window around a control character, the head of an
over-long name, one list item) takes a :class:`Show` and quotes through it alone, so a secret value never
reaches a message however the message is built. The provider plugin knows which inputs and settings are
secret and passes :data:`HIDDEN` for them; the dynamic provider is never told (Pulumi strips secrets
before its Check) and quotes everything with :data:`PLAIN`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["HIDDEN", "PLAIN", "SECRET_TEXT", "Show", "describe_value"]

#: What a secret value is written as.
SECRET_TEXT = "[secret]"


@dataclass(frozen=True)
class Show:
    """How an error quotes (part of) one value: ``show(part)`` is ``repr(part)``, or :data:`SECRET_TEXT`
    when ``secret``, whatever part is asked for."""

    secret: bool = False

    def __call__(self, part: object) -> str:
        return self.text(repr(part))

    def text(self, plain: str) -> str:
        """``plain`` (text made from the value), or :data:`SECRET_TEXT` for a secret value."""
        return SECRET_TEXT if self.secret else plain


PLAIN = Show()
HIDDEN = Show(secret=True)


def describe_value(value: Any, show: Show = PLAIN) -> str:
    """A value as a user wrote it, for error text: Pulumi delivers every number as a float, so a 5 in
    the program arrives as 5.0 and is described as "number 5". A secret one keeps only its kind."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {show.text(str(value).lower())}"
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return f"number {show.text(str(int(value)))}"
    if isinstance(value, (int, float)):
        return f"number {show(value)}"
    if isinstance(value, str):
        return f"string {show(value)}"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "a list"
    return type(value).__name__
