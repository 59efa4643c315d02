"""``openvocab`` with this checkout's ``demo/`` as ``openvocab.demo`` (what an editable install of this checkout, or
its wheel, maps it to), whichever checkout the interpreter's editable install points at: the demo tests run the
demo they test. ``python tests/checkout_demo.py demo --config C --port P`` is ``openvocab demo --config C --port P``."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def use_checkout_demo() -> None:
    """Import ``openvocab.demo`` from this checkout's ``demo/`` (once; before anything imports the demo)."""
    import openvocab

    here = sys.modules.get("openvocab.demo")
    if here is not None and Path(here.__file__).resolve().parent == ROOT / "demo":
        return
    spec = importlib.util.spec_from_file_location("openvocab.demo", ROOT / "demo" / "__init__.py",
                                                  submodule_search_locations=[str(ROOT / "demo")])
    module = importlib.util.module_from_spec(spec)
    for name in [m for m in sys.modules if m == "openvocab.demo" or m.startswith("openvocab.demo.")]:
        del sys.modules[name]
    sys.modules["openvocab.demo"] = module
    spec.loader.exec_module(module)
    openvocab.demo = module


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    use_checkout_demo()
    from openvocab.cli import main

    sys.exit(main(sys.argv[1:]))
