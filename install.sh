#!/usr/bin/env bash
# Installs openvocab and its offline language data on a fresh machine (Python 3.11, pip).
#   ./install.sh          the package, spaCy's English model and WordNet (NLTK)
#   ./install.sh --test   the same plus the test tools
# GPU machines: pip picks the CUDA build of torch; for a CPU-only torch install it first, e.g.
#   pip install torch torchvision --index-url https://download.pytorch.org/whl/cpu
set -euo pipefail
cd "$(dirname "$0")"
extras=""
[ "${1:-}" = "--test" ] && extras="[test]"
python3 -m pip install -q -e ".${extras}"
# WordNet is not on PyPI: Debian's wordnet packages, copied into NLTK's data folder.
openvocab-setup-wordnet
