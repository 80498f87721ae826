"""Training callbacks: the step LR schedule, the wall-clock stop and the epoch log."""

import types

import keras

from training import callbacks as cb


def test_step_schedule():
    s = cb.step_schedule(1e-3, (2, 4), 0.1)
    assert [round(s(e), 9) for e in range(6)] == [1e-3, 1e-3, 1e-4, 1e-4, 1e-5, 1e-5]


def _run(stop, durations, monkeypatch):
    """Feeds epoch ends at the given durations; returns the epochs trained."""
    clock = [0.0]
    monkeypatch.setattr(cb.time, "monotonic", lambda: clock[0])
    stop.set_model(types.SimpleNamespace(stop_training=False))
    stop.on_train_begin()
    for epoch, d in enumerate(durations):
        clock[0] += d
        stop.on_epoch_end(epoch)
        if stop.model.stop_training:
            return epoch + 1
    return len(durations)


def test_stop_after_ends_before_the_budget(monkeypatch):
    # First epoch 30 s (compilation), then 10 s each: with 75 s, epochs end at 30, 40, 50, 60;
    # after 60 s another 10 s epoch would end at 70 <= 75, so it runs; at 70, 80 > 75: stop.
    assert _run(cb.StopAfter(75), [30] + [10] * 10, monkeypatch) == 5
    # Once a later epoch is known, the first (compilation) one no longer counts: with 65 s,
    # the epoch ending at 40 is followed by ones ending at 50 and 60 (counting the 30 s first
    # epoch would have stopped at 40); after one epoch only its own length is known (45 s: stop).
    assert _run(cb.StopAfter(65), [30] + [10] * 10, monkeypatch) == 4
    assert _run(cb.StopAfter(45), [30] + [10] * 10, monkeypatch) == 1
    # A budget longer than the run never stops it.
    assert _run(cb.StopAfter(1000), [1] * 5, monkeypatch) == 5


def test_epoch_timer_logs_wall_time_and_training_images_per_second(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(cb.time, "perf_counter", lambda: clock[0])
    messages = []
    timer = cb.EpochTimer(batch_size=50, report=messages.append)
    for epoch in range(2):
        timer.on_epoch_begin(epoch)
        for _ in range(4):  # 4 steps of 50 images, 0.5 s each: 100 images/s
            clock[0] += 0.5
            timer.on_train_batch_end(0)
        clock[0] += 3.0  # validation and callbacks: in the wall time, not in the rate
        logs = {"loss": 1.0}
        timer.on_epoch_end(epoch, logs)
        assert logs["epoch_time_s"] == 5.0
        assert logs["train_images_per_s"] == 100.0
        assert logs["loss"] == 1.0
    assert len(messages) == 1 and "first training step done" in messages[0]
    assert 0 < timer.first_step_s < 1e7


def test_process_seconds_counts_from_the_process_start():
    s = cb.process_seconds()
    assert 0 < s < 24 * 3600


def test_epoch_log_numbers_from_one_and_keeps_a_legacy_logs_base(tmp_path):
    from training.callbacks import EpochLog, log_epoch_base

    path = tmp_path / "log.csv"
    assert log_epoch_base(path) == 1
    log = EpochLog(str(path), first=log_epoch_base(path))
    log.set_model(keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)]))
    log.on_train_begin()
    for e in range(2):
        log.on_epoch_end(e, {"loss": float(e)})
    log.on_train_end()
    assert [r.split(",")[0] for r in path.read_text().splitlines()] == ["epoch", "1", "2"]
    assert log_epoch_base(path) == 1
    legacy = tmp_path / "legacy.csv"
    legacy.write_text("epoch,loss\n0,1.0\n1,0.5\n")
    assert log_epoch_base(legacy) == 0
