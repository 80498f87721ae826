import json

import numpy as np
import pytest

from t2i.cli import main
from tests.runs import train_tiny_run
from training.evaluate import evaluate


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return train_tiny_run(tmp_path_factory.mktemp("eval") / "run", {"data.test_examples": 64})


def test_report(run_dir, tmp_path):
    report = evaluate(run_dir, tmp_path / "r", examples=64, iw_examples=8, iw_k=(1, 4),
                      ssi_captions=4, samples=3, retrieval_queries=5, candidates=10)
    saved = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(report))
    assert report["examples"] == 64
    lb = report["lower_bound"]["all"]
    assert lb < 0 and np.isfinite(lb)
    iw = report["importance_weighted_bound"]
    assert iw["k=4"] >= iw["k=1"] - 1e-6
    # An untrained model draws nothing recognisable: fidelity near the floor; real images near the ceiling.
    assert report["fidelity"]["all"] < 0.3
    assert report["fidelity_ceiling_real"]["all"] > 0.85
    assert report["fidelity_floor_shuffled"] < 0.3
    assert -1 <= report["ssi"]["mean"] <= 1 and 0 <= report["ssi"]["diversity"] <= 1
    t = report["retrieval"]
    assert t["queries"] == 5 and t["candidates"] == 10 and 1 <= t["median_rank"] <= 10
    assert 0 <= t["R@1"] <= t["R@5"] <= t["R@10"] == 100.0
    md = (tmp_path / "r" / "metrics.md").read_text()
    assert "caption fidelity" in md and "SSI" in md
    assert (tmp_path / "r" / "samples.png").is_file()


def test_cli_and_bad_arguments(run_dir, tmp_path, capsys):
    assert main(["evaluate", "--run", str(run_dir), "-o", str(tmp_path / "c"), "--examples", "16",
                 "--iw-examples", "2", "--ssi-captions", "2", "--samples", "2",
                 "--retrieval-queries", "2", "--candidates", "4"]) == 0
    assert "lower bound" in capsys.readouterr().out
    assert main(["evaluate", "--run", str(run_dir), "-o", str(tmp_path / "d"), "--samples", "1"]) == 2
    assert "--samples >= 2" in capsys.readouterr().err
