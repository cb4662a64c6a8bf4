"""Declare an EnOS stream-processing stage state reset as a Pulumi resource.

>>> from enos_pulumi import StageStateReset  # doctest: +SKIP
"""

from .errors import (
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
    UnexpectedAnswerError,
    UnsupportedStageError,
)
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
    "UnexpectedAnswerError",
    "UnsupportedStageError",
    "__version__",
]
