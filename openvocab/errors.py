"""The two kinds of error the command line prints as one message, without a traceback.

* :class:`UserError`: the user asked for something that cannot be done as asked (a bad argument, a
  missing or malformed input file, a config that does not build); exit status 2.
* :class:`RunError`: a correct request failed while running (a service that does not answer, a disk
  that refuses a write); exit status 1. Plugins subclass it for their own failures (e.g. the tag
  describer's ``BackendError``).
"""
from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix; printed as one message, no traceback (exit status 2)."""


class RunError(RuntimeError):
    """A failure while running; printed as one message, no traceback (exit status 1)."""
