#!/usr/bin/env bash
# Installs openvocab and its offline language data on a fresh machine (Python 3.11, pip).
#   ./install.sh          the package, spaCy's English model and WordNet (NLTK)
#   ./install.sh --test   the same plus the test tools (pytest, Gradio, Playwright + Debian's chromium...)
# GPU machines: pip picks the CUDA build of torch; for a CPU-only torch install it first, e.g.
#   pip install torch torchvision --index-url https://download.pytorch.org/whl/cpu
set -euo pipefail
cd "$(dirname "$0")"
extras=""
if [ "${1:-}" = "--test" ]; then
    extras="[test]"
    # The browser test drives Debian's Chromium through Playwright (Playwright's own browser download needs
    # a network this project does not assume); fonts so that the page's screenshot shows text.
    if ! command -v chromium >/dev/null 2>&1; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            apt-get update -q
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core
        else
            echo "install.sh: the browser test needs Chromium: apt-get install chromium (as root)" >&2
        fi
    fi
fi
python3 -m pip install -q -e ".${extras}"
# WordNet is not on PyPI: Debian's wordnet packages, copied into NLTK's data folder.
openvocab-setup-wordnet
