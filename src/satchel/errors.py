"""Domain errors, defined once; each HTTP surface maps them to its own error shape."""

from __future__ import annotations


class SatchelError(Exception):
    """Base of every error a service raises on purpose."""

    message = "Request failed"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)

    @property
    def detail(self) -> str:
        return str(self.args[0])


class BadRequest(SatchelError):
    message = "Bad request"


class Unauthorized(SatchelError):
    message = "Login required"


class PasswordRequired(Unauthorized):
    message = "Password required"


class Forbidden(SatchelError):
    message = "Forbidden"


class NotFound(SatchelError):
    message = "File not found or expired"


class Conflict(SatchelError):
    message = "Already exists"


class Gone(SatchelError):
    message = "Download limit reached, file has been removed"


class RequestTimeout(SatchelError):
    message = "Upload stalled too long and was discarded: send it again"


class TooLarge(SatchelError):
    message = "File too large"


class RateLimited(SatchelError):
    message = "Too many requests, try again later"

    def __init__(self, retry_after: int, message: str | None = None) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)


class RangeNotSatisfiable(SatchelError):
    message = "Requested range not satisfiable"

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size


class InsufficientStorage(SatchelError):
    message = "Insufficient storage"


class ConfigError(Exception):
    """A setting has a bad value; start-up stops with this message."""


class PreconditionFailed(SatchelError):
    message = "Precondition failed"


class ServiceUnavailable(SatchelError):
    """Something the request needs is down for now: the client may try again later."""

    message = "Service unavailable, try again shortly"
    retry_after = 5


class DatabaseUnavailable(ServiceUnavailable):
    message = "The database is unavailable, try again shortly"


class KeysUnavailable(ServiceUnavailable):
    message = "The server's master keys are being changed, try again shortly"


class ChecksumMismatch(SatchelError):
    message = "Checksum mismatch: the data of this request was not kept"


class OffsetConflict(Conflict):
    message = "Upload-Offset does not match the upload's offset"


class UploadLocked(Conflict):
    """Another request is writing to this resumable upload right now (409, as an offset
    conflict: tus clients retry both)."""

    message = "Another request is writing to this upload: try again shortly"

    def __init__(self, retry_after: int, message: str | None = None) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)


class WrongPassword(Forbidden):
    message = "Wrong password"
