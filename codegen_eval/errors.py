"""User-facing errors: each becomes one clear line and exit status 2 at the CLI."""


class UsageError(Exception):
    """Bad input the user can fix: missing file, bad flag, unknown id, malformed data."""


class SandboxError(Exception):
    """Infrastructure failure of a sandbox (not a program's misbehaviour)."""


class BackendError(UsageError):
    """A backend cannot be used as configured (unreachable server, bad model path)."""
