"""Application errors: what services and domain code raise when a user's request cannot be
done. They know nothing of HTTP frameworks; the one exception handler (`mlplatform/api.py`)
turns them into 4xx JSON bodies, and pages and commands show their message."""

from http import HTTPStatus
from typing import Any


class ApplicationError(Exception):
    """A user-caused error; `status_code` is the HTTP status the API answers with."""

    status_code: int = HTTPStatus.BAD_REQUEST

    def __init__(
        self, message: str, *, extra: dict[str, Any] | None = None, status_code: int | None = None
    ):
        super().__init__(message)
        self.message = message
        self.extra = extra or {}
        if status_code is not None:
            self.status_code = status_code


class NotFoundError(ApplicationError):
    status_code = HTTPStatus.NOT_FOUND


class PermissionDeniedError(ApplicationError):
    status_code = HTTPStatus.FORBIDDEN


class ConflictError(ApplicationError):
    status_code = HTTPStatus.CONFLICT
