"""Exceptions the tracking SDK raises, named for what went wrong in the caller's terms.

Value problems (a param re-logged with another value, a malformed digest) are also
`ValueError`s and misuse of the run lifecycle (no active run) is also a `RuntimeError`, so code
written against MLflow's broad exception types keeps working.
"""

from __future__ import annotations


class ModelplaneError(Exception):
    """Base class of every error the SDK raises."""


class ParamConflictError(ModelplaneError, ValueError):
    """A param was logged again with a different value; params are immutable, as in MLflow."""


class InputConflictError(ModelplaneError, ValueError):
    """A data input was logged again under the same name with a different URI or digest."""


class InvalidDigestError(ModelplaneError, ValueError):
    """A data digest that cannot be mapped to ``<algorithm>:<hex>`` (e.g. a multipart ETag)."""


class RunStateError(ModelplaneError, RuntimeError):
    """The run lifecycle was misused: no active run, a run already active, a run ended."""


class RunExistsError(ModelplaneError):
    """A Run of that name already exists; run names are object names, unique per namespace."""


class ArtifactExistsError(ModelplaneError):
    """Something is already stored where a model was to be logged; logged models never change."""


class RegistrationError(ModelplaneError):
    """A model version could not be registered (no free version number, unknown source)."""


class MetricsNotStoredError(ModelplaneError):
    """Some buffered metric points could not be written to the artifact store."""


class ApiError(ModelplaneError):
    """The Kubernetes API server refused a request; ``status`` is its HTTP status."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        self.status = status
        self.reason = reason
        self.message = message
        super().__init__(f"{status} {reason}: {message}")


class ConflictError(ApiError):
    """409: the object already exists, or changed since it was read."""


class NotFoundError(ApiError):
    """404: the object does not exist."""


class InvalidObjectError(ApiError):
    """422: the API server's validation (schema or CEL rule) rejected the object."""
