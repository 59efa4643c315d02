#!/usr/bin/env bash
# Installs openvocab and its offline language data on a fresh machine (Python 3.11, pip).
#   ./install.sh --cpu    a machine without an NVIDIA GPU: CPU-only torch first (about 1 GB instead of ~6 GB)
#   ./install.sh          the package, spaCy's English model and WordNet (NLTK); torch as pip picks it (CUDA on Linux)
#   ./install.sh --test   the same plus the test tools, the real consumers of the outputs and (as root, apt)
#                         Debian's chromium for the browser test
# Options combine: ./install.sh --cpu --test
set -euo pipefail
cd "$(dirname "$0")"
extras=""
cpu=0
test=0
for arg in "$@"; do
  case "$arg" in
    --test) extras="[test]"; test=1 ;;
    --cpu) cpu=1 ;;
    *) echo "usage: ./install.sh [--cpu] [--test]" >&2; exit 2 ;;
  esac
done
# torch and torchvision must be builds of each other (a CPU torch beside a CUDA torchvision fails later with
# "operator torchvision::nms does not exist"): checked right after they are installed, in one line
check_torch() {
  python3 - <<'PY' || exit 1
import sys
try:
    import torch, torchvision
    torchvision.ops.nms(torch.zeros(1, 4), torch.zeros(1), 0.5)
except Exception as e:  # noqa: BLE001
    tv = "?"
    try:
        from importlib.metadata import version
        t, tv = version("torch"), version("torchvision")
    except Exception:  # noqa: BLE001
        t = "?"
    msg = str(e).splitlines()[0] if str(e) else type(e).__name__
    print(f"install.sh: torch {t} and torchvision {tv} do not work together ({msg}): reinstall both from one "
          "index, e.g. pip install --force-reinstall torch torchvision --index-url "
          "https://download.pytorch.org/whl/cpu (CPU) or without --index-url (CUDA)", file=sys.stderr)
    sys.exit(1)
PY
}
if [ "$cpu" = 1 ]; then
  python3 -m pip install -q torch torchvision --index-url https://download.pytorch.org/whl/cpu
  check_torch
fi
if [ "$test" = 1 ] && ! command -v chromium >/dev/null 2>&1; then
  # The browser test drives Debian's Chromium through Playwright (Playwright's own browser download needs
  # a network this project does not assume); fonts so that the page's screenshot shows text.
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core
  else
    echo "install.sh: the browser test needs Chromium: apt-get install chromium (as root)" >&2
  fi
fi
python3 -m pip install -q -e ".${extras}"
check_torch
# WordNet is not on PyPI: Debian's wordnet packages, copied into NLTK's data folder.
openvocab-setup-wordnet
