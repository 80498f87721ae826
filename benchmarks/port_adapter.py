"""Runs the public PyTorch alignDRAW port (vicissitude1999/text2image) for the side-by-side benchmark.

Runs under the PyTorch environment, not t2i's (no t2i import here), e.g.

    python3 -m venv ../torch-venv && ../torch-venv/bin/pip install torch==2.13.0 numpy
    git clone https://github.com/vicissitude1999/text2image ../port
    ../torch-venv/bin/python benchmarks/port_adapter.py --port ../port train --steps 10 --epochs 3
    ../torch-venv/bin/python benchmarks/port_adapter.py --port ../port generate --captions 2000

Only the port's own model class (`src/aligndraw.py`, `AlignDraw`) is imported from its checkout;
nothing of it is copied here. Its training step is the one of its `src/train.py` (zero_grad,
`model.loss`, backward, `clip_grad_norm_(10)`, RMSprop), at the paper's MNIST config
(`tools/mnist-captions.json`) and the batch given. The port's dataset class downloads MNIST with
torchvision, which this adapter avoids: it feeds 60x60 composites pasted from the bundled 10k-digit
MNIST (`--mnist`, t2i/data/mnist-10k.npz) with random 12-word captions over the port's 22-word
dictionary. Images' content does not change the work per step. The modules the port imports but
`AlignDraw` never uses (`clip`, `torchvision.utils`) are stubbed.

Prints one JSON line: per-epoch training images/s (steps only), or generation timings.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
import types
from pathlib import Path

START = time.perf_counter()

# The paper's MNIST config, as the port's tools/mnist-captions.json writes it.
PORT_MNIST = dict(dimY=23, dimLangRNN=128, dimAlign=512, dimA=60, dimB=60, channels=1,
                  dimReadAttent=8, dimWriteAttent=8, dimRNNEnc=300, dimRNNDec=300, dimZ=150,
                  runSteps=32)


def load_port(port: Path):
    for name in ("clip", "torchvision", "torchvision.utils"):
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.modules["torchvision"].utils = sys.modules["torchvision.utils"]
    sys.path.insert(0, str(port / "src"))
    from aligndraw import AlignDraw  # the port's model

    return AlignDraw


def composites(rng, digits, n):
    import numpy as np

    images = np.zeros((n, 60, 60), np.float32)
    for k in range(n):
        for _ in range(1 + (k % 2)):
            d = digits[rng.integers(len(digits))]
            r, c = rng.integers(0, 33, 2)
            images[k, r:r + 28, c:c + 28] = np.maximum(images[k, r:r + 28, c:c + 28], d)
    return images.reshape(n, 3600)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", required=True, type=Path, help="checkout of vicissitude1999/text2image")
    parser.add_argument("--mnist", type=Path,
                        default=Path(__file__).resolve().parents[1] / "t2i" / "data" / "mnist-10k.npz")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0,
                        help="torch.set_num_threads (0: PyTorch's default, one per core)")
    sub = parser.add_subparsers(dest="mode", required=True)
    t = sub.add_parser("train")
    t.add_argument("--steps", type=int, default=10, help="steps per epoch")
    t.add_argument("--epochs", type=int, default=3, help="epochs (the first is warm-up)")
    g = sub.add_parser("generate")
    g.add_argument("--captions", type=int, default=2000)
    args = parser.parse_args(argv)

    import numpy as np
    import torch
    import torch.nn as nn

    if args.threads:
        torch.set_num_threads(args.threads)
    AlignDraw = load_port(args.port)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    model = AlignDraw(types.SimpleNamespace(**PORT_MNIST), device="cpu")
    for m in model.modules():  # the port's initialize_weights
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight.data, 0, 0.01)
            nn.init.constant_(m.bias.data, 0)
    B = args.batch_size
    out = {"system": "pytorch-port", "torch": torch.__version__, "threads": torch.get_num_threads(),
           "batch_size": B}
    if args.mode == "train":
        with np.load(args.mnist) as d:
            digits = d["x_train"].astype(np.float32) / 255.0
        optimizer = torch.optim.RMSprop(params=model.parameters(), lr=1e-3)
        model.train()
        epochs = []
        for _ in range(args.epochs):
            batches = [(torch.from_numpy(composites(rng, digits, B)),
                        torch.from_numpy(rng.integers(0, 22, (B, 12))).long()) for _ in range(args.steps)]
            t0 = time.perf_counter()
            for image, caption in batches:  # the port's train.py step
                optimizer.zero_grad()
                Lx, Lz = model.loss((image, caption))
                loss = Lx + Lz
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), 10)
                optimizer.step()
                loss.item()
            epochs.append(args.steps * B / (time.perf_counter() - t0))
        out.update(mode="train", steps_per_epoch=args.steps, train_images_per_s=epochs,
                   last_loss=float(loss.item()))
    else:
        captions = torch.from_numpy(rng.integers(0, 22, (args.captions, 12))).long()
        model.eval()
        t0 = time.perf_counter()
        with torch.no_grad():
            images = [model.generate(captions[i:i + B])[-1] for i in range(0, args.captions, B)]
        gen_s = time.perf_counter() - t0
        images = torch.cat(images).numpy()
        # Encode the images as t2i generate's .npz output does (kept in memory, not written).
        np.savez_compressed(io.BytesIO(), images=(images * 255).round().astype(np.uint8))
        out.update(mode="generate", captions=args.captions, generate_s=gen_s,
                   generate_images_per_s=args.captions / gen_s,
                   process_s=time.perf_counter() - START)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
