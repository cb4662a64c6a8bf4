"""How a provider failure reads through the host, whatever the pulumi version."""

from __future__ import annotations


def assert_raised(details: str, error_class: str) -> None:
    """The host's failure text shows ``error_class`` was raised: pulumi >= 3.146 sends the traceback (its
    last line names the class); older hosts send only ``Exception calling application: <text>``."""
    if "Traceback" in details:
        assert f"{error_class}: " in details
    else:
        assert details.startswith("Exception calling application: ")
