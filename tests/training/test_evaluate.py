import json

import numpy as np
import pytest

from t2i_cli.commands import main
from tests.runs import copy_run
from training.evaluate import evaluate


@pytest.fixture(scope="module")
def run_dir(plain_run, tmp_path_factory):
    return copy_run(plain_run, tmp_path_factory.mktemp("eval") / "run")  # 64 test composites


def test_report(run_dir, tmp_path):
    report = evaluate(run_dir, tmp_path / "r", examples=64, iw_examples=8, iw_k=(1, 4),
                      ssi_captions=4, samples=3, retrieval_queries=5, candidates=10, probe_samples=1,
                      probe_temperatures=(0.0,))
    saved = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(report))
    assert report["examples"] == 64 and report["run"] == str(run_dir)  # the path as given
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
    assert "caption fidelity" in md and "SSI" in md and "composition probe" in md
    assert report["composition_probe"]["images"] == 440 and report["composition_probe"]["seen"] < 0.3
    assert sorted(report["composition_probe"]["attention"]) == [
        "held_out_corners", "held_out_pairs", "seen_corners", "seen_pairs"]
    for share in report["composition_probe"]["attention"].values():
        assert sum(share.values()) == pytest.approx(1.0)
    assert "| seen corners |" in md
    cold = report["composition_probe_by_temperature"]["0"]
    assert cold["temperature"] == 0.0 and cold["images"] == 440 and "per_composition" not in cold
    assert "composition probe at temperature 0" in md
    assert (tmp_path / "r" / "samples.png").is_file()


def test_cli_and_bad_arguments(run_dir, tmp_path, capsys):
    assert main(["evaluate", "--run", str(run_dir), "-o", str(tmp_path / "c"), "--examples", "16",
                 "--iw-examples", "2", "--ssi-captions", "2", "--samples", "2",
                 "--retrieval-queries", "2", "--candidates", "4",
                 "--probe-samples", "0"]) == 0  # the probe is checked in test_report
    assert "lower bound" in capsys.readouterr().out
    assert main(["evaluate", "--run", str(run_dir), "-o", str(tmp_path / "d"), "--samples", "1"]) == 2
    assert "--samples >= 2" in capsys.readouterr().err
    assert main(["evaluate", "--run", str(run_dir), "-o", str(tmp_path / "e"),
                 "--probe-temperatures", "0.5,cold"]) == 2
    assert "--probe-temperatures takes comma-separated numbers" in capsys.readouterr().err
    assert main(["evaluate", "--run", str(run_dir), "-o", str(tmp_path / "e"),
                 "--probe-temperatures", "-1"]) == 2
    assert "--probe-temperatures must be a finite number >= 0" in capsys.readouterr().err


class _CaptionIds:
    """A tokenizer stand-in: each caption becomes its row in `captions`."""

    def __init__(self):
        self.captions = []

    def encode(self, captions):
        start = len(self.captions)
        self.captions.extend(captions)
        return np.arange(start, start + len(captions))[:, None]


class _Oracle:
    """Draws a real composite of the caption, or a blank canvas for captions in `refuse`."""

    def __init__(self, tokenizer, table, refuse=()):
        self.tokenizer, self.table, self.refuse = tokenizer, table, set(refuse)

    def generate(self, tokens, seeds, temperature=1.0, trace=False, batch_size=100):
        assert len(tokens) == len(seeds) and not trace
        self.temperatures = getattr(self, "temperatures", []) + [temperature]
        captions = [self.tokenizer.captions[i] for i in tokens[:, 0]]
        attend_first_digit = np.zeros((len(captions), 3, 16), np.float32)
        attend_first_digit[:, :, 2] = 1.0  # "the digit {a} ..."
        return {"images": np.stack([np.zeros((60, 60, 1), np.float32) if c in self.refuse else self.table[c]
                                    for c in captions]),
                "alignments": attend_first_digit}


def test_attention_by_role_against_hand_counts():
    from training.evaluate import attention_by_role

    corner = "the digit 4 is at the top left of the image ."  # 11 words: 1 digit, 2 places
    pair = "the digit 2 is on the left of the digit 9 ."  # 12 words: 2 digits, 1 place
    uniform = np.zeros((2, 5, 16))
    uniform[0, :, :11], uniform[1, :, :12] = 1 / 11, 1 / 12
    got = attention_by_role(uniform, [corner, pair])
    expected = {"digits": (1 / 11 + 2 / 12) / 2, "places": (2 / 11 + 1 / 12) / 2, "other": (8 / 11 + 9 / 12) / 2}
    assert got == pytest.approx(expected)
    moving = np.zeros((1, 4, 16))
    moving[0, [0, 1, 2, 3], [2, 6, 7, 10]] = 1.0  # "4", "top", "left", "image": one word per step
    assert attention_by_role(moving, [corner]) == pytest.approx({"digits": 0.25, "places": 0.5, "other": 0.25})


def test_composition_probe_against_known_answers():
    from t2i.data import mnist_captions as mc
    from t2i.data.mnist import load_mnist
    from t2i.digit_classifier import load_classifier
    from training.evaluate import composition_probe

    digits = load_mnist("bundled")
    real = mc.CompositeSampler(digits.x_test, digits.y_test, ()).sample(20000, np.random.default_rng(3), "all")
    table = {}
    for i, c in enumerate(real.captions.tolist()):
        table.setdefault(c, real.images[i])
    assert len(table) == 440  # every caption of every composition
    held = ["2 left of 9", "4 top left", "6 above 2"]
    held_captions = [c for h in held for c in mc.captions_for(h)]
    classifier = load_classifier()

    tok = _CaptionIds()
    oracle = _Oracle(tok, table)
    perfect = composition_probe(oracle, tok, classifier, held, samples=2, temperature=0.25)
    assert oracle.temperatures == [0.25] and perfect["temperature"] == 0.25
    assert perfect["images"] == 2 * 440 and len(tok.captions) == 880
    assert sorted(perfect["held_out_compositions"]) == sorted(held)
    assert len(perfect["per_composition"]) == 240
    assert perfect["seen"] > 0.9 and perfect["held_out"] > 0.9  # real composites: near the ceiling
    assert perfect["attention"]["held_out_corners"] == {"digits": 1.0, "places": 0.0, "other": 0.0}
    assert sorted(perfect["attention"]) == ["held_out_corners", "held_out_pairs", "seen_corners", "seen_pairs"]
    # Both samples of a caption are its one real composite: no diversity at all.
    assert perfect["diversity"] == {"seen": 0.0, "held_out": 0.0} and perfect["sampler"] == "plain"

    tok = _CaptionIds()  # draws every seen composition, nothing for the held-out ones
    refusing = composition_probe(_Oracle(tok, table, held_captions), tok, classifier, held, samples=2)
    assert refusing["held_out"] < 0.1 and refusing["seen"] > 0.9
    assert all(v < 0.1 for v in refusing["held_out_compositions"].values())
    # Where nothing is drawn the classifier reads one fixed digit, never the asked-for one.
    for name, read in refusing["held_out_read_as"].items():
        assert abs(sum(read.values()) - 1) < 1e-9 and len(read) == 1
        assert list(read)[0].split() != [str(d) for d in (mc.parse_composition(name).a,
                                                          mc.parse_composition(name).b) if d is not None]
    assert perfect["held_out_read_as"]["4 top left"].get("4", 0) > 0.9

    tok = _CaptionIds()  # a blank model: near zero everywhere
    blank = composition_probe(_Oracle(tok, table, table), tok, classifier, held, samples=2)
    assert blank["seen"] < 0.1 and blank["held_out"] < 0.1

    class _Alternating(_Oracle):
        """Odd seeds draw the composite, even ones a blank: each caption's pair differs by
        the composite's mean intensity."""

        def generate(self, tokens, seeds, temperature=1.0, trace=False, batch_size=100):
            out = super().generate(tokens, seeds, temperature)
            out["images"] = out["images"] * (np.asarray(seeds) % 2)[:, None, None, None]
            return out

    tok = _CaptionIds()
    half = composition_probe(_Alternating(tok, table), tok, classifier, held, samples=2, seed=1)
    means = {c: float(np.mean(img)) for c, img in table.items()}
    expected_seen = np.mean([means[c] for c in table if c not in held_captions])
    expected_held = np.mean([means[c] for c in held_captions])
    assert half["diversity"]["seen"] == pytest.approx(expected_seen, rel=1e-5)
    assert half["diversity"]["held_out"] == pytest.approx(expected_held, rel=1e-5)


def test_sampler_diversity_against_plain_computed_here():
    """best_of_k:k=1 is plain sampling: the same SSIM and pixel distance, ratio 1; the
    distance recomputed here from `generate`'s images for the same seeds."""
    import dataclasses

    from t2i import config as C
    from t2i import samplers
    from t2i.model import AlignDRAW
    from t2i.text import CaptionTokenizer
    from training.evaluate import sampler_diversity

    cfg = C.get_preset("tiny")
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, init_stddev=0.3))
    model = AlignDRAW.from_config_dataclass(cfg, seed=3)
    tokens = CaptionTokenizer(cfg.text).encode(["the digit 3 is at the top left of the image .",
                                                "the digit 1 is on the left of the digit 7 ."])
    model.generate(tokens[:1], [0])
    model.initial_canvas.assign(np.zeros(model.initial_canvas.shape, "float32"))  # mid-grey: images vary
    got = sampler_diversity(model, cfg, tokens, samplers.Sampler.parse("best_of_k:k=1"), seed=5,
                            captions=2, samples=3)
    images = model.generate(np.repeat(tokens, 3, axis=0), 5 + np.tile(np.arange(3), 2))["images"]
    images = images.astype(np.float64).reshape(2, 3, -1)
    want = np.mean([np.abs(images[c, i] - images[c, j]).mean() for c in range(2) for i, j in ((0, 1), (0, 2), (1, 2))])
    assert got["plain_pixel_distance"] == pytest.approx(want, rel=1e-6) and want > 0
    assert got["sampler_ssim"] == got["plain_ssim"] and got["pixel_distance_ratio"] == 1.0
    assert (got["captions"], got["samples"], got["sampler"]) == (2, 3, "best_of_k:k=1")
