"""Toxiproxy's API errors: the exact messages of its error table and the status each one carries.

An :class:`ApiError` is raised wherever a request is refused and becomes, at the HTTP layer, the body
``{"error":"<message>","status":<code>}`` with that status. The messages below are Toxiproxy's own
(``api.go``; its ``api_test.go`` checks them), so a client matching on them works against either server.
"""
from __future__ import annotations

BAD_REQUEST_BODY = "bad request body"
MISSING_NAME = "missing required field: name"
MISSING_UPSTREAM = "missing required field: upstream"
PROXY_NOT_FOUND = "proxy not found"
PROXY_EXISTS = "proxy already exists"
INVALID_STREAM = "stream was invalid, can be either upstream or downstream"
INVALID_TOXIC_TYPE = "invalid toxic type"
TOXIC_EXISTS = "toxic already exists"
TOXIC_NOT_FOUND = "toxic not found"


class ApiError(Exception):
    """A refused request: ``message`` (Toxiproxy's text) and the HTTP ``status`` it is answered with."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.message, self.status = message, status

    def at_proxy(self, n: int) -> "ApiError":
        """The same error about entry ``n`` (from 1) of a ``/populate`` list, as Toxiproxy words it."""
        return ApiError(f"{self.message} at proxy {n}", self.status)


def bad_body(detail: str) -> ApiError:
    """400 ``bad request body: <detail>``, Toxiproxy's answer to a body it cannot decode."""
    return ApiError(f"{BAD_REQUEST_BODY}: {detail}", 400)


def json_kind(value) -> str:
    """The JSON kind of a decoded value, as Go's decoder names it in its errors."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def cannot_unmarshal(value, struct: str, field: str, go_type: str) -> ApiError:
    """400 in the words of Go's JSON decoder: a value of the wrong kind for a field."""
    kind = json_kind(value)
    if kind == "number" and go_type.startswith("int"):
        kind = f"number {value!r}"          # Go names the number it could not fit into an integer
    return bad_body(f"json: cannot unmarshal {kind} into Go struct field {struct}.{field} of type {go_type}")
