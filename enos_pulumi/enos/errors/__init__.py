"""One exception hierarchy, rooted at :class:`EnosError`; every public error is importable from here.

By concern: :mod:`.base` (the root and the client's own errors: settings, IDs, the network, time
bounds), :mod:`.api` (what EnOS answered, and the table from its codes to classes), :mod:`.outcomes`
(the reset's refusals and outcomes). No secret (key, token, signature) is ever part of an error.
"""

from __future__ import annotations

from .api import (
    ApiError,
    AuthenticationError,
    DeletionRejectedError,
    InvalidParameterError,
    InvalidTokenError,
    PipelineAccessError,
    PipelineNotFoundError,
    PipelineStatusError,
    RateLimitedError,
    RequestTooLargeError,
    ServerError,
    TooManyPointsError,
    UnexpectedAnswerError,
    UnsupportedStageError,
    api_error_class,
)
from .base import (
    ConfigurationError,
    EnosError,
    InvalidIdsError,
    OperationTimeoutError,
    TransportError,
    TransportKind,
)
from .outcomes import (
    PipelineLeftPausedError,
    PipelineNotListedError,
    PipelineNotPausedError,
    StateRemainsError,
)

__all__ = [
    "ApiError",
    "AuthenticationError",
    "ConfigurationError",
    "DeletionRejectedError",
    "EnosError",
    "InvalidIdsError",
    "InvalidParameterError",
    "InvalidTokenError",
    "OperationTimeoutError",
    "PipelineAccessError",
    "PipelineLeftPausedError",
    "PipelineNotFoundError",
    "PipelineNotListedError",
    "PipelineNotPausedError",
    "PipelineStatusError",
    "RateLimitedError",
    "RequestTooLargeError",
    "ServerError",
    "StateRemainsError",
    "TooManyPointsError",
    "TransportError",
    "TransportKind",
    "UnexpectedAnswerError",
    "UnsupportedStageError",
    "api_error_class",
]

# The classes keep the public path they always had, wherever they are defined: in reprs, tracebacks
# (which the Pulumi host prints) and pickles.
for _name in __all__:
    _value = globals()[_name]
    if isinstance(_value, type):
        _value.__module__ = __name__
del _name, _value
