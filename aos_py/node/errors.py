"""Errors the node raises; the client maps them to its own classes."""

from __future__ import annotations


class NodeError(RuntimeError):
    """Base of the node's errors."""


class NotFound(NodeError, LookupError):
    """No such process, message or data."""


class Rejected(NodeError, ValueError):
    """An item or request the node refuses; nothing changed."""
