#!/usr/bin/env bash
# One command from a fresh clone: install t2i into .venv, train briefly on MNIST with
# captions (a short fine-tune of the shipped model), write quickstart.png for two captions
# (one whose composition was held out of training), and print how often the evaluation's
# digit classifier reads the right digits in the model's drawings.
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
# Train: 60 steps of the paper's MNIST-with-captions model, starting from the weights shipped in
# the repository (its configuration: the forward caption encoder, the bundled 10k digits) at its
# final learning rate. From scratch, a few minutes of a 2-core CPU draw only faint blobs.
.venv/bin/t2i train --preset mnist_captions --model.caption_encoder forward --data.mnist.source bundled \
    --train.init_from pretrained --train.learning_rate 1e-4 --train.lr_decay_epochs "" \
    --epochs 1 --steps-per-epoch 60 --data.validation_examples 500 --train.sample_every 0 --out "$RUN"
# Generate: 8 samples of a caption seen in training and of one whose composition is held out.
.venv/bin/t2i generate --run "$RUN" -o quickstart.png --samples 8 \
    "the digit 7 is on the left of the digit 1 ." \
    "the digit 2 is on the left of the digit 9 ."
# Measure: the evaluation's digit classifier on one sample for each of 300 test captions.
.venv/bin/t2i evaluate --run "$RUN" -o "$RUN/report" --checkpoint last --examples 300 --iw-examples 1 \
    --ssi-captions 1 --samples 2 --retrieval-queries 0 --probe-samples 0 --probe-temperatures "" > /dev/null
.venv/bin/python - "$RUN/report/metrics.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
f = r["fidelity"]
print(f"quickstart: the digit classifier reads the right digits at the right places in "
      f"{100 * f['seen']:.0f}% of the images drawn for seen test captions "
      f"({r['examples'] - r['held_out_examples']} captions; real test composites: "
      f"{100 * r['fidelity_ceiling_real']['seen']:.0f}%)")
PY
echo "wrote quickstart.png (a seen and a held-out caption, 8 samples each) and $RUN/report/"
