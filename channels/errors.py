"""Errors of the chat channels, each with a stable code and HTTP status."""

from core.errors import DomainError, NotFoundError, UnauthorizedError


class SignatureMissingError(UnauthorizedError):
    code = "signature_missing"


class SignatureMismatchError(DomainError):
    code = "signature_mismatch"
    status_code = 403


class VerificationRefusedError(DomainError):
    code = "verification_refused"
    status_code = 403


class ChannelDisabledError(NotFoundError):
    code = "channel_disabled"


class GraphError(Exception):
    """Meta's Graph API refused a send, or kept failing until we gave up."""

    def __init__(
        self, reason: str, *, status: int | None = None, attempts: int = 1
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.attempts = attempts
