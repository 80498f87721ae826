"""COCO end to end on a fixture: `t2i train --preset coco_32 --coco-root`, sample,
sharpen, export and serve over gRPC (a tiny model, RGB 32x32)."""

import json

import numpy as np
from PIL import Image

from export.export_savedmodel import export_model
from serving import client
from serving import model_config as mc
from serving import server as srv
from t2i_cli import commands as cli
from t2i import run as run_lib
from tests.fixtures.coco import make_coco_fixture
from tests.harness import assert_same_image_up_to_rounding

TINY_MODEL = ["--model.num_steps", "3", "--model.read_size", "3", "--model.write_size", "3",
              "--model.encoder_units", "16", "--model.decoder_units", "16", "--model.latent_dim", "4",
              "--model.caption_units", "8", "--model.align_units", "16"]


def test_tiny_coco_trains_samples_sharpens_exports_and_serves(tmp_path, capsys):
    fx = make_coco_fixture(tmp_path / "coco", n_train=24, n_val=12)
    run = tmp_path / "run"
    assert cli.main(["train", "--preset", "coco_32", "--coco-root", str(fx.root), "--out", str(run),
                     "--epochs", "2", "--steps-per-epoch", "3", "--batch-size", "8",
                     "--data.coco.validation_images", "6", "--data.coco.test_images", "6",
                     "--data.coco.cache", str(tmp_path / "cache"), "--quiet", *TINY_MODEL]) == 0

    config = run_lib.load_run_config(run)
    # The vocabulary was built from the training captions and saved with the run.
    assert config.data.dataset == "coco" and len(config.text.vocabulary) > 5
    assert "red" in config.text.vocabulary and config.model.channels == 3
    rows = (run / "log.csv").read_text().splitlines()
    assert len(rows) == 3 and all(np.isfinite(float(x)) for x in rows[-1].split(",")[1:])
    grid = sorted((run / "samples").glob("*.png"))
    assert len(grid) == 2 and Image.open(grid[-1]).mode == "RGB"
    assert json.loads((run / "run_info.json").read_text())["data_source"].startswith("coco")

    caption = "a red square on a blue background ."
    out = tmp_path / "coco.npz"
    assert cli.main(["generate", "--run", str(run), caption, "-o", str(out)]) == 0
    images = np.load(out)["images"]
    assert images.shape == (1, 32, 32, 3) and images.dtype == np.uint8

    assert cli.main(["sharpen", "train", "--run", str(run), "--steps", "2", "--batch-size", "4",
                     "--generator-filters", "4", "4", "--discriminator-filters", "4"]) == 0

    report = tmp_path / "report"
    assert cli.main(["evaluate", "--run", str(run), "-o", str(report), "--examples", "6",
                     "--iw-examples", "2", "--ssi-captions", "2", "--samples", "2",
                     "--retrieval-queries", "3", "--candidates", "5"]) == 0
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["dataset"] == "coco" and metrics["examples"] == 6 and "fidelity" not in metrics
    assert metrics["lower_bound"]["all"] < 0 and "bound_sharpened" in metrics
    assert 1 <= metrics["retrieval"]["median_rank"] <= 5
    assert "COCO test images" in (report / "metrics.md").read_text()

    path = export_model(run, tmp_path / "models" / "t2i")
    server = srv.ModelServer(models=[mc.ModelConfig("t2i", str(path.parent))], port=0,
                             file_system_poll_wait_seconds=0, grpc_max_threads=4).start()
    try:
        channel = client.make_channel(f"127.0.0.1:{server.port}")
        client.wait_until_available(f"127.0.0.1:{server.port}", timeout_s=60)
        served = client.predict(channel, [caption, "a green circle ."], seeds=[0, 1])
        assert served["images"].shape == (2, 32, 32, 3) and served["images"].dtype == np.uint8
        # Same seed, same image (batch 2 against batch 1: up to float rounding).
        assert_same_image_up_to_rounding(served["images"][:1], images)
        sharp = client.predict(channel, [caption], seeds=[0], signature_name="sharpened")
        assert sharp["images"].shape == (1, 32, 32, 3)
        channel.close()
    finally:
        server.stop(grace_s=1)
