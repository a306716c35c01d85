"""The one exception tree of claude-force.

Every failure has a stable ``code`` (used as ``AgentResult.error_code``)::

    ClaudeForceError
    ├── ConfigError ..................... config_error
    │   ├── ConfigNotFound .............. config_not_found
    │   ├── UnknownAgent ................ unknown_agent
    │   ├── UnknownWorkflow ............. unknown_workflow
    │   ├── UnsafePath .................. unsafe_path
    │   └── FileTooLarge ................ file_too_large
    ├── InputError ...................... invalid_input
    │   ├── TaskTooLarge ................ task_too_large
    │   ├── TooManyTasks ................ too_many_tasks
    │   ├── BatchInputError ............. batch_input_error
    │   └── PromptInjectionBlocked ...... prompt_injection
    ├── SecretError ..................... weak_secret
    ├── CacheError ...................... cache_error
    │   ├── UnsafeCacheDir .............. unsafe_cache_dir
    │   └── CacheIntegrityError ......... cache_integrity
    ├── OrchestratorClosed .............. closed
    ├── BudgetExceeded .................. budget_exceeded
    ├── CircuitOpen ..................... circuit_open
    ├── RequestExceedsLimit ............. request_exceeds_limit
    ├── DeadlineExceeded ................ deadline_exceeded
    └── TransportError .................. transport_error
        ├── APIConnectionError .......... connection_error
        ├── APITimeoutError ............. timeout
        ├── MalformedResponse ........... malformed_response
        │   └── EmptyResponse ........... empty_response
        └── APIStatusError .............. api_error
            ├── BadRequest (400) ........ bad_request
            ├── AuthenticationError (401) authentication_error
            ├── PermissionDenied (403) .. permission_denied
            ├── NotFound (404) .......... not_found
            ├── RequestTimeout (408) .... request_timeout
            ├── RequestTooLarge (413) ... request_too_large
            ├── RateLimited (429) ....... rate_limited
            ├── ServerError (5xx) ....... server_error
            └── Overloaded (529) ........ overloaded

Messages never contain secrets: API keys are redacted before they reach an exception.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from claude_force.models import Usage


class ClaudeForceError(Exception):
    """Root of every error raised by claude-force."""

    code: str = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- configuration -------------------------------------------------------------------------------


class ConfigError(ClaudeForceError):
    """The configuration or a file it names is missing or invalid; ``path`` and ``key`` say where."""

    code = "config_error"

    def __init__(self, message: str, *, path: Path | str | None = None, key: str | None = None) -> None:
        where = ""
        if path is not None:
            where = f"{path}"
            if key:
                where += f" [{key}]"
            where += ": "
        elif key:
            where = f"[{key}]: "
        super().__init__(where + message)
        self.path = None if path is None else Path(path)
        self.key = key


class ConfigNotFound(ConfigError):
    """The config file does not exist."""

    code = "config_not_found"


class UnknownAgent(ConfigError):
    """An agent name that the config does not declare."""

    code = "unknown_agent"


class UnknownWorkflow(ConfigError):
    """A workflow name that the config does not declare."""

    code = "unknown_workflow"


class UnsafePath(ConfigError):
    """A path escapes its allowed root (``..``, absolute, or through a symlink)."""

    code = "unsafe_path"


class FileTooLarge(ConfigError):
    """A file is larger than its configured limit."""

    code = "file_too_large"


# --- input ---------------------------------------------------------------------------------------


class InputError(ClaudeForceError):
    """A task or batch input is invalid."""

    code = "invalid_input"


class TaskTooLarge(InputError):
    """A task exceeds the character or estimated-token limit."""

    code = "task_too_large"


class TooManyTasks(InputError):
    """More tasks than ``max_tasks_per_call`` were passed to one call."""

    code = "too_many_tasks"


class BatchInputError(InputError):
    """A batch input line is malformed; ``line`` is its 1-based number."""

    code = "batch_input_error"

    def __init__(self, message: str, *, line: int | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line is not None else message)
        self.line = line


class PromptInjectionBlocked(InputError):
    """The screen found a prompt injection and the policy is ``block``."""

    code = "prompt_injection"


# --- cache ---------------------------------------------------------------------------------------


class SecretError(ClaudeForceError):
    """The cache secret is missing, too short, or a known default."""

    code = "weak_secret"


class CacheError(ClaudeForceError):
    """The response cache cannot be used."""

    code = "cache_error"


class UnsafeCacheDir(CacheError):
    """The cache directory is a symlink, has a symlinked component, wrong owner or wrong mode."""

    code = "unsafe_cache_dir"


class CacheIntegrityError(CacheError):
    """A cache entry failed its MAC or format check; it is never served."""

    code = "cache_integrity"


# --- orchestration -------------------------------------------------------------------------------


class OrchestratorClosed(ClaudeForceError):
    """The orchestrator was closed and refuses new work."""

    code = "closed"


class BudgetExceeded(ClaudeForceError):
    """Reserving this call's worst-case cost would exceed ``budget_usd``; no call was made."""

    code = "budget_exceeded"


class CircuitOpen(ClaudeForceError):
    """The circuit for this (endpoint, model) is open; the call failed fast."""

    code = "circuit_open"

    def __init__(self, message: str, *, retry_in: float | None = None) -> None:
        super().__init__(message)
        self.retry_in = retry_in


class RequestExceedsLimit(ClaudeForceError):
    """A request needs more than a whole rate-limit bucket; it could never be sent."""

    code = "request_exceeds_limit"


class DeadlineExceeded(ClaudeForceError):
    """The task's overall deadline passed before it could finish."""

    code = "deadline_exceeded"


# --- transport and provider ----------------------------------------------------------------------


class TransportError(ClaudeForceError):
    """A failure talking to the API."""

    code = "transport_error"

    def __init__(self, message: str, *, request_id: str | None = None) -> None:
        super().__init__(message)
        self.request_id = request_id


class APIConnectionError(TransportError):
    """The connection failed or was reset."""

    code = "connection_error"


class APITimeoutError(TransportError):
    """One attempt took longer than its timeout."""

    code = "timeout"


class MalformedResponse(TransportError):
    """The response body is not a valid Messages API response.

    It came with a 200, so the API may have billed it: ``usage`` holds the body's token counts when they could be
    read (the budget charges them), else None.
    """

    code = "malformed_response"

    def __init__(self, message: str, *, request_id: str | None = None, usage: Usage | None = None) -> None:
        super().__init__(message, request_id=request_id)
        self.usage = usage


class ResponseTooLarge(MalformedResponse):
    """The response body is larger than ``max_response_bytes``; read no further, and not retried."""

    code = "response_too_large"


class EmptyResponse(MalformedResponse):
    """The response has null/missing content, no text blocks, or only empty text."""

    code = "empty_response"


class APIStatusError(TransportError):
    """The API answered with an error status."""

    code = "api_error"

    def __init__(
        self,
        message: str,
        *,
        status: int,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"HTTP {status}: {message}", request_id=request_id)
        self.status = status
        self.retry_after = retry_after


class BadRequest(APIStatusError):
    """HTTP 400."""

    code = "bad_request"


class AuthenticationError(APIStatusError):
    """HTTP 401."""

    code = "authentication_error"


class PermissionDenied(APIStatusError):
    """HTTP 403."""

    code = "permission_denied"


class NotFound(APIStatusError):
    """HTTP 404."""

    code = "not_found"


class RequestTimeout(APIStatusError):
    """HTTP 408."""

    code = "request_timeout"


class RequestTooLarge(APIStatusError):
    """HTTP 413."""

    code = "request_too_large"


class RateLimited(APIStatusError):
    """HTTP 429; ``retry_after`` is the server's wait in seconds, if it sent one."""

    code = "rate_limited"


class ServerError(APIStatusError):
    """HTTP 500, 502, 503, 504 or another 5xx."""

    code = "server_error"


class Overloaded(APIStatusError):
    """HTTP 529."""

    code = "overloaded"


STATUS_ERRORS: dict[int, type[APIStatusError]] = {
    400: BadRequest,
    401: AuthenticationError,
    403: PermissionDenied,
    404: NotFound,
    408: RequestTimeout,
    413: RequestTooLarge,
    429: RateLimited,
    529: Overloaded,
}


def status_error(
    status: int, message: str, *, request_id: str | None = None, retry_after: float | None = None
) -> APIStatusError:
    """Build the exception for an HTTP error status."""
    cls = STATUS_ERRORS.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else APIStatusError
    return cls(message, status=status, request_id=request_id, retry_after=retry_after)
