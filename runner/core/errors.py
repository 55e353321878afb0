"""latlab's exceptions. Setup and config problems raise; request failures are rows.

    LatlabError                  anything latlab raises on purpose (exit code 2)
     ├── ConfigError             bad spec: unknown key, wrong type, bad value
     │    └── CredentialsError   a real provider selected but no credentials found
     ├── ResultsError            results dir unwritable, Parquet unreadable
     └── EmulatorError           the embedded emulator could not start

User errors print one line, no traceback, unless ``LATLAB_DEBUG=1`` is set.

Request-level failures never raise out of a sweep: they become a row whose
``error_type`` is one of ``ERROR_TYPES`` (a closed list, documented in the README).
"""

from __future__ import annotations


class LatlabError(Exception):
    """Base class; ``str(exc)`` is the one line shown to the user."""

    exit_code = 2


class ConfigError(LatlabError):
    """The composed config is invalid. Message names the key path."""


class CredentialsError(ConfigError):
    """A real provider was selected but its credentials are missing."""


class ResultsError(LatlabError):
    """Results cannot be written or read."""


class EmulatorError(LatlabError):
    """The embedded emulator failed to start."""


ERROR_TYPES: dict[str, str] = {
    "rate_limited": "HTTP 429 / ThrottlingException: the provider refused for rate",
    "overloaded": "HTTP 529 / overloaded_error / ServiceUnavailable: provider out of capacity",
    "server_error": "other HTTP 5xx (500, 502, 503, 504)",
    "client_error": "HTTP 4xx other than 429: validation, auth, not found, too large",
    "access_denied": "HTTP 401/403: missing or wrong credentials or permissions",
    "timeout": "no complete answer within workload.timeout_s (connect, read or total)",
    "connect_error": "the TCP/TLS connection could not be opened (refused, DNS, TLS)",
    "connection_reset": "the connection closed or reset before the response headers",
    "stream_error": "an error event inside a 200 stream (SSE `error`, event-stream exception)",
    "protocol_error": "malformed response: bad SSE/JSON, bad event-stream frame or CRC",
    "truncated": "a 200 stream ended or broke after it started, before its terminal event",
    "client_bottleneck": "latlab itself could not keep the schedule (reserved for the load engine)",
}

# The error types worth sending again (workload.retries): the provider may answer next time.
RETRYABLE = frozenset({"rate_limited", "overloaded", "server_error", "connect_error",
                       "connection_reset", "timeout"})
