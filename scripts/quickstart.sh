#!/usr/bin/env bash
# One command from a fresh clone: install t2i into .venv, train a model briefly
# on MNIST with captions, and write quickstart.png for two captions (one whose
# composition was held out of training), and the same with the shipped
# pretrained model as quickstart-pretrained.png.
#   bash scripts/quickstart.sh
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# The versions the test suite last passed with (requirements-lock.txt, resolved on CPython 3.11).
LOCK=()
if [ "$(.venv/bin/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')" = 3.11 ]; then
    LOCK=(-c requirements-lock.txt)
fi
.venv/bin/python -m pip install -q -r requirements.txt "${LOCK[@]}"
.venv/bin/python -m pip install -q --no-deps -e .

export TF_CPP_MIN_LOG_LEVEL=2
RUN=runs/quickstart
rm -rf "$RUN"
.venv/bin/t2i train --preset mnist_captions --out "$RUN" --epochs 1 --steps-per-epoch 60 \
    --data.validation_examples 500
.venv/bin/t2i generate --run "$RUN" -o quickstart.png --samples 8 \
    "the digit 7 is on the left of the digit 1 ." \
    "the digit 2 is on the left of the digit 9 ."
# The same captions with the pretrained model shipped in the repository (no --run).
.venv/bin/t2i generate -o quickstart-pretrained.png --samples 8 \
    "the digit 7 is on the left of the digit 1 ." \
    "the digit 2 is on the left of the digit 9 ."
echo "wrote quickstart.png (60 steps of training) and quickstart-pretrained.png (the shipped model)"
