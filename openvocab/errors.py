"""The two kinds of error the command line prints as one message, without a traceback.

* :class:`UserError`: the user asked for something that cannot be done as asked (a bad argument, a
  missing or malformed input file, a config that does not build); exit status 2.
* :class:`RunError`: a correct request failed while running (a service that does not answer, a disk
  that refuses a write); exit status 1. Plugins subclass it for their own failures (e.g. the tag
  describer's ``BackendError``).

:class:`ArgumentParser` makes argparse's own usage errors one line too (exit status 2).
"""
from __future__ import annotations

import argparse


class UserError(Exception):
    """A problem the user can fix; printed as one message, no traceback (exit status 2)."""


class RunError(RuntimeError):
    """A failure while running; printed as one message, no traceback (exit status 1)."""


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose usage errors are one line, ``PROG: MESSAGE (see PROG --help)``,
    with exit status 2 (argparse prints the whole usage text first). Sub-parsers inherit the class."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")
