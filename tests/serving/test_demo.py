"""`t2i demo`: the page's logic against the model directly, and the page in a real headless browser.

The in-process tests use the shipped model (no training); the gRPC backend is
checked against the tiny SavedModels of tests/serving/server/tiny.py, whose images are
(seed + tag [+ round(10 temperature)]) % 256. The browser tests drive Debian's
Chromium with Selenium (.ci/run installs both).
"""

import io
import os
import socket

import numpy as np
import pytest
import requests
from PIL import Image

from serving import demo as demo_lib
from t2i import config as C
from t2i import visualize
from t2i.errors import T2IError
from tests.serving.server.tiny import one_model_server

SEEN = "the digit 3 is at the top of the digit 8 ."
HELD_OUT = "the digit 2 is on the left of the digit 9 ."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def local():
    backend = demo_lib.LocalModel()  # the shipped model
    return demo_lib.Demo(backend, backend.config.text, demo_lib.example_captions(backend.config))


@pytest.fixture(scope="module")
def tiny_target(tiny, tmp_path_factory):
    yield from one_model_server(tiny, tmp_path_factory, "m")


# --------------------------------------------------------------------------
# the page's functions against the model


def test_run_draws_what_the_model_draws(local):
    from t2i.text import CaptionTokenizer

    result = local.run(HELD_OUT, seed=3, samples=4, temperature=0.7)
    model, config = local.backend.model, local.backend.config
    tokens = CaptionTokenizer(config.text).encode([HELD_OUT] * 4)
    want = model.generate(tokens, np.arange(3, 7), trace=True, temperature=0.7)
    np.testing.assert_array_equal(result.images, visualize.to_uint8(want["images"]))
    assert result.words == HELD_OUT.split() and result.unknown == []
    # The grid, the animation and the heatmap are t2i.visualize's figures of those arrays.
    expected_grid = visualize.captioned_grid([visualize.to_uint8(want["images"])], [HELD_OUT])
    np.testing.assert_array_equal(np.asarray(result.grid), np.asarray(expected_grid))
    steps = config.model.num_steps
    with Image.open(result.animation) as gif:
        assert gif.format == "GIF" and gif.n_frames == steps
        gif.seek(steps - 1)
        last = np.asarray(gif.convert("L"))
    final = visualize.image_grid(visualize.to_uint8(want["canvases"][:, -1]), cols=4)
    assert last.shape[1] == final.shape[1] * 2  # the GIF's frames are upscaled 2x
    heatmap = visualize.alignment_figure(want["alignments"][0, :, :len(result.words)],
                                         result.words, scale=1)
    np.testing.assert_array_equal(np.asarray(result.attention)[28:], np.asarray(heatmap))
    assert f"{steps} drawing steps" in result.message and "temperature 0.7" in result.message


def test_a_shipped_model_draws_with_its_own_sampler():
    """The scenes model's config names best-of-4 (`sample.sampler`): the demo draws with it."""
    from t2i import samplers
    from t2i.text import CaptionTokenizer

    backend = demo_lib.LocalModel("pretrained:scenes_32")
    assert backend.config.sample.sampler == "best_of_k:k=4"
    captions = ["a green bus parked in a parking lot"] * 2
    got = backend.generate(captions, [0, 1], 1.0)
    tokens = CaptionTokenizer(backend.config.text).encode(captions)
    want = samplers.best_of_k(backend.model, tokens, [0, 1], 4, samplers.interchangeable_for(backend.config),
                              trace=True)
    np.testing.assert_array_equal(got["images"], visualize.to_uint8(want["images"]))
    np.testing.assert_array_equal(got["canvases"], visualize.to_uint8(want["canvases"]))


def test_examples_are_seen_and_held_out_compositions(local):
    from t2i.data import mnist_captions as mcap

    held = {mcap.parse_composition(h) for h in local.backend.config.data.held_out}
    assert local.held_out_examples and local.seen_examples
    assert HELD_OUT in local.held_out_examples and SEEN in local.seen_examples

    def composition(caption):
        words = caption.split()
        for k in range(8):
            for a in range(10):
                for b in range(10):
                    if mcap.caption(k, a, b) == caption:
                        return mcap.composition_of(k, a, b)
        raise AssertionError(words)

    assert all(composition(c) in held for c in local.held_out_examples)
    assert not any(composition(c) in held for c in local.seen_examples)


def test_bad_input_gets_a_clear_message(local):
    cases = {"": "is empty: it has no words", "  \t": "is empty: it has no words",
             "the digit " * 9: "has 18 tokens .words and punctuation marks.; this model takes at most 16"}
    for caption, message in cases.items():
        with pytest.raises(T2IError, match=message):
            local.run(caption)
    for kwargs, message in (({"seed": -1}, "seed must be a whole number"),
                            ({"seed": 1.5}, "seed must be a whole number"),
                            ({"samples": 0}, "samples must be a whole number from 1 to 16"),
                            ({"samples": 17}, "samples must be a whole number from 1 to 16"),
                            ({"temperature": -1}, "temperature must be a finite number >= 0"),
                            ({"temperature": "hot"}, "temperature must be a number")):
        with pytest.raises(T2IError, match=message):
            local.run(SEEN, **kwargs)
    result = local.run("the digit 3 is at the top of the zebra .", samples=1)
    assert result.unknown == ["zebra"] and "read as [UNK]: zebra" in result.message
    assert result.images.shape == (1, 60, 60, 1)


def test_served_model_uses_trace_and_sample(tiny_target):
    backend = demo_lib.ServedModel(tiny_target, "m", timeout_s=10)
    page = demo_lib.Demo(backend, C.mnist_captions().text)
    try:
        traced = page.run("the digit 3 .", seed=5, samples=3, temperature=1)
        assert traced.images[:, 0, 0, 0].tolist() == [6, 7, 8]  # seed + tag 1
        with Image.open(traced.animation) as gif:
            assert gif.n_frames == 3  # the tiny model's T
        sampled = page.run("the digit 3 .", seed=5, samples=3, temperature=0.5)
        assert sampled.images[:, 0, 0, 0].tolist() == [11, 12, 13]  # + round(10 x 0.5)
        assert sampled.animation is None and "No animation" in sampled.message
    finally:
        backend.close()
    wrong = demo_lib.ServedModel(tiny_target, "nope", timeout_s=10)
    with pytest.raises(T2IError, match="has no model 'nope'"):
        demo_lib.Demo(wrong, C.mnist_captions().text).run("the digit 3 .")
    wrong.close()


def test_a_server_that_is_down_is_a_clear_message():
    backend = demo_lib.ServedModel(f"127.0.0.1:{free_port()}", "t2i", timeout_s=5)
    try:
        with pytest.raises(T2IError, match=r"is not answering \(UNAVAILABLE\); start it with"):
            demo_lib.Demo(backend, C.mnist_captions().text).run(SEEN, samples=1)
    finally:
        backend.close()


def test_command_line_errors_are_one_line(capsys, tmp_path):
    assert demo_lib.main(["--max-samples", "0"]) == 2
    assert capsys.readouterr().err.strip() == "t2i: error: --max-samples must be >= 1, got 0"
    assert demo_lib.main(["--run", str(tmp_path / "none")]) == 2
    assert "does not exist" in capsys.readouterr().err
    parsed = demo_lib.build_parser().parse_args([])
    assert (parsed.host, parsed.port, parsed.server) == ("127.0.0.1", 7860, None)


# --------------------------------------------------------------------------
# the page in a real browser


@pytest.fixture(scope="module")
def page(local):
    from serving.browser import Browser

    port = free_port()
    app = demo_lib.serve(local, "127.0.0.1", port, block=False)
    browser = Browser()
    try:
        yield browser.driver, f"http://127.0.0.1:{port}/"
    finally:
        browser.quit()
        app.close()


def _caption_box(driver, url):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    return WebDriverWait(driver, 60).until(
        lambda d: d.find_element(By.CSS_SELECTOR, "#caption textarea"))


def _type(box, text):
    from selenium.webdriver.common.keys import Keys

    box.send_keys(Keys.CONTROL + "a", Keys.DELETE)
    if text:
        box.send_keys(text)


def _images(driver, ids, previous=()):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def loaded(d):
        srcs = []
        for elem_id in ids:
            found = d.find_elements(By.CSS_SELECTOR, f"#{elem_id} img")
            if not found or not found[0].get_attribute("src"):
                return False
            srcs.append(found[0].get_attribute("src"))
        return srcs if srcs and not set(srcs) & set(previous) else False

    return WebDriverWait(driver, 120).until(loaded)


def _fetch(src) -> Image.Image:
    answer = requests.get(src, timeout=30)
    assert answer.status_code == 200
    return Image.open(io.BytesIO(answer.content))


def test_browser_draws_a_typed_caption(page, local):
    from selenium.webdriver.common.by import By

    driver, url = page
    box = _caption_box(driver, url)
    assert "Held-out compositions" in driver.find_element(By.TAG_NAME, "body").text
    _type(box, HELD_OUT)
    driver.find_element(By.ID, "draw").click()
    grid_src, gif_src, attention_src = _images(driver, ["grid", "animation", "attention"])
    # What the page shows is what Demo.run draws for these inputs (the page's defaults).
    want = local.run(HELD_OUT, seed=0, samples=8, temperature=1.0)
    shown = _fetch(grid_src)
    np.testing.assert_array_equal(np.asarray(shown.convert("RGB")), np.asarray(want.grid))
    with _fetch(gif_src) as gif:
        assert gif.format == "GIF" and gif.n_frames == local.backend.config.model.num_steps
    assert _fetch(attention_src).size == want.attention.size
    assert "8 samples, seeds 0..7" in driver.find_element(By.ID, "status").text


def test_without_run_the_demo_offers_every_shipped_model_in_a_tab(page, local):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    demos = demo_lib.demo_from_args(demo_lib.build_parser().parse_args([]))
    assert list(demos) == ["mnist_captions", "scenes_32"]
    scenes = demos["scenes_32"]
    assert scenes.backend.config.data.dataset == "scenes"
    assert scenes.default_caption == scenes.seen_examples[0] and "bus" in scenes.default_caption
    assert demos["mnist_captions"].default_caption == demo_lib.DEFAULT_CAPTION
    driver, _ = page
    port = free_port()
    app = demo_lib.serve(demos, "127.0.0.1", port, block=False)
    try:
        _caption_box(driver, f"http://127.0.0.1:{port}/")
        driver.find_element(By.XPATH, "//button[@role='tab' and contains(., 'scenes_32')]").click()
        box = WebDriverWait(driver, 60).until(
            lambda d: d.find_element(By.CSS_SELECTOR, "#caption-2 textarea"))
        assert "Held-out compositions" in driver.find_element(By.TAG_NAME, "body").text
        _type(box, "a stop sign flying in blue skies")
        driver.find_element(By.ID, "draw-2").click()
        (grid_src,) = _images(driver, ["grid-2"])
        want = scenes.run("a stop sign flying in blue skies", seed=0, samples=8, temperature=1.0)
        np.testing.assert_array_equal(np.asarray(_fetch(grid_src).convert("RGB")), np.asarray(want.grid))
    finally:
        app.close()


def test_browser_shows_the_error_for_an_empty_caption_and_keeps_serving(page):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver, url = page
    box = _caption_box(driver, url)
    _type(box, "")
    driver.find_element(By.ID, "draw").click()
    WebDriverWait(driver, 60).until(
        lambda d: "is empty: it has no words" in d.find_element(By.TAG_NAME, "body").text)
    body = driver.find_element(By.TAG_NAME, "body").text
    assert "Traceback" not in body
    # The app keeps serving: the next caption draws; an unknown word is named in the page.
    _type(box, "the digit 3 is at the top of the zebra .")
    driver.find_element(By.ID, "draw").click()
    _images(driver, ["grid", "attention"])
    WebDriverWait(driver, 60).until(
        lambda d: "read as [UNK]: zebra" in d.find_element(By.ID, "status").text)


def test_browser_shows_a_clear_message_when_the_server_is_down(page):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver, _ = page
    backend = demo_lib.ServedModel(f"127.0.0.1:{free_port()}", "t2i", timeout_s=5)
    port = free_port()
    app = demo_lib.serve(demo_lib.Demo(backend, C.mnist_captions().text), "127.0.0.1", port,
                         block=False)
    try:
        box = _caption_box(driver, f"http://127.0.0.1:{port}/")
        _type(box, SEEN)
        driver.find_element(By.ID, "draw").click()
        WebDriverWait(driver, 60).until(
            lambda d: "is not answering (UNAVAILABLE)" in d.find_element(By.TAG_NAME, "body").text)
        assert "Traceback" not in driver.find_element(By.TAG_NAME, "body").text
    finally:
        app.close()
        backend.close()


def test_demo_is_an_optional_extra_the_library_never_imports():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for folder, _, files in os.walk(os.path.join(root, "t2i")):
        for name in files:
            if name.endswith(".py") and name != "cli.py":
                with open(os.path.join(folder, name), encoding="utf-8") as f:
                    text = f.read()
                assert "import gradio" not in text and "from serving" not in text, name
    with open(os.path.join(root, "pyproject.toml"), encoding="utf-8") as f:
        pyproject = f.read()
    core = pyproject.split("dependencies = [", 1)[1].split("]", 1)[0]
    assert "gradio" not in core and 'demo = ["gradio' in pyproject


def test_t2i_demo_command_serves_the_page_and_exits_zero_on_sigterm():
    import signal
    import subprocess
    import sys
    import time

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    port, down = free_port(), free_port()
    while down == port:
        down = free_port()
    proc = subprocess.Popen(  # --server: no model to load; the page answers at once
        [sys.executable, "-m", "t2i_cli", "demo", "--server", f"127.0.0.1:{down}",
         "--port", str(port)], cwd=root, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline, status = time.monotonic() + 120, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status = requests.get(f"http://127.0.0.1:{port}/", timeout=30).status_code
                break
            except requests.RequestException:  # not listening yet, or slow to answer
                time.sleep(0.5)
        assert status == 200, proc.stdout.read().decode(errors="replace")[-2000:]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert f"t2i demo: http://127.0.0.1:{port}/" in proc.stdout.read().decode(errors="replace")
