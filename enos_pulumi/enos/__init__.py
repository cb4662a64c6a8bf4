"""The EnOS side: settings, authentication, the HTTP client and its operations, the errors.

Nothing here imports ``pulumi`` (a test enforces it): the client can be used, and tested, on its own.
Start with :class:`EnosClient` and :func:`resolve_settings` (see docs/api.md).
"""

from .client import EnosClient
from .model import RequestEvent, ResetReport, StageTarget
from .settings import Settings, resolve_settings

__all__ = ["EnosClient", "RequestEvent", "ResetReport", "Settings", "StageTarget", "resolve_settings"]
