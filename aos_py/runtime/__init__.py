"""The process runtime: one sandboxed Lua 5.3 state per aos process."""

from aos_py.runtime.process import (
    DEFAULT_COMPUTE_BUDGET,
    DEFAULT_MEMORY_LIMIT,
    HandleError,
    ProcessRuntime,
)

__all__ = ["DEFAULT_COMPUTE_BUDGET", "DEFAULT_MEMORY_LIMIT", "HandleError", "ProcessRuntime"]
