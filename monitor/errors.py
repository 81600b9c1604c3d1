"""How an exception is written in a log line, a run's `error` and a job's failure message."""

from __future__ import annotations


def describe(exc: BaseException) -> str:
    """'TimeoutError: timed out', or just 'TimeoutError' when the exception says nothing."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
