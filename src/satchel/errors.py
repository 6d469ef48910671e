"""Domain errors, defined once. They carry no HTTP status: each surface (public, /apiv1,
/api/v2, tus, pages) maps them to its own error shape in one table of its own."""

from __future__ import annotations


class SatchelError(Exception):
    """Base of every error a service raises on purpose."""

    message = "Request failed"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)

    @property
    def detail(self) -> str:
        return str(self.args[0])


class ConfigError(Exception):
    """A setting has a bad value; start-up stops with this message."""


# -- the request itself -------------------------------------------------------------------


class BadRequest(SatchelError):
    message = "Bad request"


class NoFiles(BadRequest):
    message = "No files"


class TooLarge(SatchelError):
    message = "File too large"

    def __init__(self, message: str | None = None, limit: int | None = None) -> None:
        super().__init__(message)
        self.limit = limit  # the limit it went past, in bytes, when known


class RequestTimeout(SatchelError):
    message = "Upload stalled too long and was discarded: send it again"


class PreconditionFailed(SatchelError):
    message = "Precondition failed"


class RangeNotSatisfiable(SatchelError):
    message = "Requested range not satisfiable"

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size


class ChecksumMismatch(SatchelError):
    message = "Checksum mismatch: the data of this request was not kept"


# -- who may -------------------------------------------------------------------------------


class Unauthorized(SatchelError):
    message = "Login required"


class PasswordRequired(Unauthorized):
    message = "Password required"


class Forbidden(SatchelError):
    message = "Forbidden"


class WrongPassword(Forbidden):
    message = "Wrong password"


class RateLimited(SatchelError):
    message = "Too many requests, try again later"

    def __init__(self, retry_after: int, message: str | None = None) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)


class TooManyUploads(RateLimited):
    """The package's ``concurrent_uploads``."""


# -- what is there ---------------------------------------------------------------------------


class NotFound(SatchelError):
    message = "File not found or expired"


class FileNotFound(NotFound):
    """A drive file of the caller's that does not exist (or is another user's)."""

    message = "File not found"


class FolderNotFound(NotFound):
    message = "Folder not found"


class NotInTrash(NotFound):
    message = "Not in the trash"


class Gone(SatchelError):
    message = "Download limit reached, file has been removed"


class Conflict(SatchelError):
    message = "Already exists"


class OffsetConflict(Conflict):
    message = "Upload-Offset does not match the upload's offset"


class UploadLocked(Conflict):
    """Another request is writing to this resumable upload right now (a conflict, as an
    offset conflict is: tus clients retry both)."""

    message = "Another request is writing to this upload: try again shortly"

    def __init__(self, retry_after: int, message: str | None = None) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)


# -- room and availability -------------------------------------------------------------------


class InsufficientStorage(SatchelError):
    message = "Insufficient storage"


class QuotaExceeded(InsufficientStorage):
    message = "Storage quota exceeded"


class StorageFull(InsufficientStorage):
    message = "Server storage is full"


class ServiceUnavailable(SatchelError):
    """Something the request needs is down for now: the client may try again later."""

    message = "Service unavailable, try again shortly"
    retry_after = 5


class DatabaseUnavailable(ServiceUnavailable):
    message = "The database is unavailable, try again shortly"


class KeysUnavailable(ServiceUnavailable):
    message = "The server's master keys are being changed, try again shortly"
