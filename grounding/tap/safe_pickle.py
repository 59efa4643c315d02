"""A restricted unpickler for the official TAP ``.pkl`` files.

The official checkpoints are pickles of ``{key: numpy array}`` and the concept files pickles of
``[numpy array, [str, ...]]``. :func:`safe_load` rebuilds exactly that: plain containers
(dict/list/tuple/str/bytes/numbers) and numpy arrays, dtypes and scalars. Any other global a
pickle asks for (``os.system``, ``builtins.eval``, arbitrary classes...) raises
:class:`UnsafePickleError` before anything is called.
"""
from __future__ import annotations

import collections
import io
import os
import pickle
from typing import Any

import numpy as np


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle references a global that is not a numpy array constructor or plain container."""


def _latin1_encode(obj: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """Stand-in for ``_codecs.encode`` (Python 3 protocol-2 pickles store bytes this way)."""
    if encoding.replace("-", "").lower() not in ("latin1", "iso88591"):
        raise UnsafePickleError(f"_codecs.encode with encoding {encoding!r} is not allowed")
    return obj.encode("latin1", errors)


def _numpy_global(module: str, name: str) -> Any:
    core = module.split(".")[1] if "." in module else ""
    if module == "numpy" and name in ("ndarray", "dtype"):
        return getattr(np, name)
    if core in ("core", "_core") and module.endswith(".multiarray") and name in ("_reconstruct", "scalar"):
        from numpy._core import multiarray

        return getattr(multiarray, name)
    if core in ("core", "_core") and module.endswith(".numeric") and name == "_frombuffer":
        from numpy._core import numeric

        return numeric._frombuffer
    if module.startswith("numpy") and name.endswith("DType") and name[0].isupper():
        # numpy >= 1.25 pickles dtypes as numpy.dtypes.Float32DType etc.
        import numpy.dtypes as dtypes

        obj = getattr(dtypes, name, None)
        if isinstance(obj, type) and issubclass(obj, np.dtype):
            return obj
    return None


class RestrictedUnpickler(pickle.Unpickler):
    """Allows only numpy arrays / dtypes / scalars and plain Python containers."""

    def find_class(self, module: str, name: str) -> Any:
        if module.split(".")[0] == "numpy":
            obj = _numpy_global(module, name)
            if obj is not None:
                return obj
        elif module == "_codecs" and name == "encode":
            return _latin1_encode
        elif module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        raise UnsafePickleError(f"pickle wants global '{module}.{name}', which is not allowed "
                                "(only numpy arrays and plain containers may be loaded)")

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("persistent ids are not allowed")


def safe_loads(data: bytes) -> Any:
    return RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()


def safe_load(path: os.PathLike | str) -> Any:
    """Unpickle ``path`` with :class:`RestrictedUnpickler`."""
    with open(path, "rb") as f:
        return RestrictedUnpickler(f, encoding="latin1").load()
