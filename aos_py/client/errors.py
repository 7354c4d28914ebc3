"""Errors the client API raises, whichever node (embedded, shared over the socket) answered."""

from __future__ import annotations


class ClientError(Exception):
    """Base of every client error; the message says what went wrong."""


class NotFoundError(ClientError, LookupError):
    """No such process, message or data on the node."""


class ResultTimeout(ClientError, TimeoutError):
    """A result did not arrive in time (the message is still in the log and will be computed)."""


class RejectedError(ClientError, ValueError):
    """The node refused an item or request (bad signature, oversize, unknown module, bad arguments)."""


class NodeUnavailable(ClientError, ConnectionError):
    """The node could not be reached or started."""


def translate(exc: BaseException) -> ClientError:
    """Map a node-side exception to the client's error classes."""
    from aos_py.node.errors import NotFound, Rejected
    from aos_py.node.gateway import GatewayError
    from aos_py.node.store import StoreError

    if isinstance(exc, ClientError):
        return exc
    if isinstance(exc, NotFound):
        return NotFoundError(str(exc))
    if isinstance(exc, (Rejected, GatewayError)):
        return RejectedError(str(exc))
    if isinstance(exc, TimeoutError):
        return ResultTimeout(str(exc))
    if isinstance(exc, StoreError):
        return ClientError(str(exc))
    from aos_py.node.errors import NodeError

    if isinstance(exc, NodeError):
        return ClientError(str(exc))
    return ClientError(f"{type(exc).__name__}: {exc}")


BY_NAME = {c.__name__: c for c in (ClientError, NotFoundError, ResultTimeout, RejectedError, NodeUnavailable)}
