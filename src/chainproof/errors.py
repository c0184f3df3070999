"""The one error tree of chainproof.

Every error the system raises on purpose is a :class:`ChainproofError`. Each leaf maps to exactly
one gRPC status code, one HTTP status and one exit code of the command line, and that mapping
lives here and nowhere else::

    ChainproofError                               HTTP  exit
    ├── InvalidArgument      INVALID_ARGUMENT     400   2    the request itself is wrong
    ├── FailedPrecondition   FAILED_PRECONDITION  400   2    the request is fine, the state is not
    ├── NotFound             NOT_FOUND            404   2
    ├── AlreadyExists        ALREADY_EXISTS       409   2
    ├── PermissionDenied     PERMISSION_DENIED    403   2
    ├── Unauthenticated      UNAUTHENTICATED      401   2
    ├── PayloadTooLarge      RESOURCE_EXHAUSTED   413   2    a body or message over the size limit
    ├── DeadlineExceeded     DEADLINE_EXCEEDED    504   3
    ├── Unavailable          UNAVAILABLE          503   3    a dependency (the database) is down
    └── Internal             INTERNAL             500   2    a bug; the message never leaks details

Exit 2 is "bad usage or bad input, the server's answers included", 3 "could not reach what
was needed" (a script may retry it); 1 is no error but a check that failed (a denial, an
attestation that does not verify), set by the commands themselves.

Messages say what was wrong, what was expected and, where it helps, what to do. Entrypoints
(REST, gRPC, CLI) only translate these; they never invent their own codes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar


class ChainproofError(Exception):
    """Base of every deliberate error; carries its own human explanation."""

    grpc_code: ClassVar[str] = "UNKNOWN"
    http_status: ClassVar[int] = 500
    #: How ``chainproof`` ends when this error stops a command.
    exit_code: ClassVar[int] = 2

    def __init__(self, message: str, *, details: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        #: Extra lines (one per violation, for example); shown to the caller as they are.
        self.details: tuple[str, ...] = tuple(details)

    def __str__(self) -> str:
        if not self.details:
            return self.message
        return self.message + "\n" + "\n".join(f"  - {d}" for d in self.details)


class InvalidArgument(ChainproofError):
    grpc_code = "INVALID_ARGUMENT"
    http_status = 400


class FailedPrecondition(ChainproofError):
    grpc_code = "FAILED_PRECONDITION"
    http_status = 400


class NotFound(ChainproofError):
    grpc_code = "NOT_FOUND"
    http_status = 404


class AlreadyExists(ChainproofError):
    grpc_code = "ALREADY_EXISTS"
    http_status = 409


class PermissionDenied(ChainproofError):
    grpc_code = "PERMISSION_DENIED"
    http_status = 403


class Unauthenticated(ChainproofError):
    grpc_code = "UNAUTHENTICATED"
    http_status = 401


class PayloadTooLarge(ChainproofError):
    grpc_code = "RESOURCE_EXHAUSTED"
    http_status = 413


class DeadlineExceeded(ChainproofError):
    grpc_code = "DEADLINE_EXCEEDED"
    http_status = 504
    exit_code = 3


class Unavailable(ChainproofError):
    grpc_code = "UNAVAILABLE"
    http_status = 503
    exit_code = 3


class Internal(ChainproofError):
    grpc_code = "INTERNAL"
    http_status = 500


#: gRPC numeric codes (google.rpc.Code) by name, for REST error bodies.
GRPC_CODE_NUMBERS: dict[str, int] = {
    "OK": 0,
    "CANCELLED": 1,
    "UNKNOWN": 2,
    "INVALID_ARGUMENT": 3,
    "DEADLINE_EXCEEDED": 4,
    "NOT_FOUND": 5,
    "ALREADY_EXISTS": 6,
    "PERMISSION_DENIED": 7,
    "RESOURCE_EXHAUSTED": 8,
    "FAILED_PRECONDITION": 9,
    "ABORTED": 10,
    "OUT_OF_RANGE": 11,
    "UNIMPLEMENTED": 12,
    "INTERNAL": 13,
    "UNAVAILABLE": 14,
    "DATA_LOSS": 15,
    "UNAUTHENTICATED": 16,
}
