"""Errors a user can act on. Each message is a sentence meant for the user."""


class QjsonTasksError(Exception):
    """Base of every error the CLI turns into one `ERROR ...` line."""


class ConfigError(QjsonTasksError):
    """A target config (or a flag overriding it) is invalid."""


class ToolError(QjsonTasksError):
    """An external tool (buildah, debootstrap, ...) is missing or failed.

    `output` holds the last lines the failed command printed, when there are any.
    """

    def __init__(self, message: str, output: str = "") -> None:
        self.output = output
        super().__init__(f"{message}\n{output}" if output else message)


class ToolMissingError(ToolError):
    """A tool is not on PATH; the message says what to install."""


class StepError(QjsonTasksError):
    """A build step failed; wraps the underlying error with the step's name."""

    def __init__(self, step: str, cause: QjsonTasksError, hint: str = "") -> None:
        self.step = step
        self.cause = cause
        self.hint = hint
        message = f"step '{step}' failed: {cause}"
        if hint:
            message += f"\n{hint}"
        super().__init__(message)


class VerificationError(QjsonTasksError):
    """An image failed verification."""


class RockError(QjsonTasksError):
    """A rock, rockspec or rock server can't be read or resolved."""


class RegistryError(QjsonTasksError):
    """A registry refused or could not be reached, or what it holds failed a check."""


class PublishRefused(QjsonTasksError):
    """An image that must not be pushed (missing, unverified); says what to run instead."""
