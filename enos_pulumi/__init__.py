"""Declare an EnOS stream-processing stage state reset as a Pulumi resource.

>>> from enos_pulumi import StageStateReset  # doctest: +SKIP

``StageStateReset`` is imported on first use: ``enos_pulumi.enos`` (the EnOS client) and the simulator
load without ``pulumi``, which takes a third of a second to import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .enos.errors import (
    ApiError,
    AuthenticationError,
    ConfigurationError,
    DeletionRejectedError,
    EnosError,
    InvalidIdsError,
    InvalidParameterError,
    InvalidTokenError,
    OperationTimeoutError,
    PipelineAccessError,
    PipelineLeftPausedError,
    PipelineNotFoundError,
    PipelineNotListedError,
    PipelineNotPausedError,
    PipelineStatusError,
    RateLimitedError,
    RequestTooLargeError,
    ServerError,
    StateRemainsError,
    TooManyPointsError,
    TransportError,
    TransportKind,
    UnexpectedAnswerError,
    UnsupportedStageError,
)

if TYPE_CHECKING:
    from .resource import StageStateReset

__version__ = "0.1.0"

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
    "StageStateReset",
    "StateRemainsError",
    "TooManyPointsError",
    "TransportError",
    "TransportKind",
    "UnexpectedAnswerError",
    "UnsupportedStageError",
    "__version__",
]


def __getattr__(name: str) -> Any:
    if name == "StageStateReset":
        from .resource import StageStateReset

        return StageStateReset
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
