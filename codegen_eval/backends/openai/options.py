"""The openai backend's `-B key=value` options and their checks."""

from __future__ import annotations

from dataclasses import dataclass

from codegen_eval.errors import UsageError


@dataclass(frozen=True, slots=True)
class OpenAIOptions:
    """`-B key=value` options of the openai backend."""

    # Comma-separated base URLs (http://host:port/v1); requests are spread over them. Default: $OPENAI_BASE_URL.
    base_url: str = ""
    api_key_env: str = "OPENAI_API_KEY"  # the environment variable holding the key (the key is never recorded)
    chat: bool = False  # /v1/chat/completions with the driver's messages (instruct models; not paper-comparable)
    concurrency: int = 16  # requests in flight
    timeout: float = 300.0  # seconds to wait for one response (a non-streamed reply arrives only when done)
    connect_timeout: float = 10.0
    retries: int = 6  # further attempts after a connection error, timeout, 429 or 5xx
    backoff: float = 0.5  # first wait in seconds; doubles per consecutive failure of an endpoint, with jitter
    max_backoff: float = 30.0
    check_model: bool = True  # ask GET /models at start that the model is served
    max_stop: int = 0  # send at most this many stop strings (OpenAI's API takes 4); 0: all


def _validate(o: OpenAIOptions) -> None:
    checks = [
        (o.concurrency >= 1, "concurrency must be at least 1"),
        (o.timeout > 0 and o.connect_timeout > 0, "timeouts must be positive"),
        (o.retries >= 0, "retries must be >= 0"),
        (o.backoff >= 0 and o.max_backoff >= o.backoff, "need 0 <= backoff <= max_backoff"),
        (o.max_stop >= 0, "max_stop must be >= 0"),
        (bool(o.api_key_env.strip()), "api_key_env must name an environment variable"),
    ]
    for ok, message in checks:
        if not ok:
            raise UsageError(f"backend 'openai': {message}")
