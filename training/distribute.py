"""Scale-out training: `tf.distribute` strategies and `keras.distribution`.

`t2i train --strategy S` picks how one training step is spread over devices;
the model code is the same in every case (Keras layers written with
`keras.ops`), and so are the results per image: the loss is nats per image
whatever the number of replicas.

TensorFlow backend:

* `default`: the default strategy (one device).
* `mirrored`: `tf.distribute.MirroredStrategy` over every local GPU (or the
  CPU if there is none).
* `multiworker`: `tf.distribute.MultiWorkerMirroredStrategy`, configured from
  the `TF_CONFIG` environment variable (one process per worker, all started
  with the same command and the same shared `--out`).

The global batch (`train.batch_size`) is split evenly over the replicas; each
worker takes its share of every global batch (`tf.data` auto-sharding by
DATA), so two workers see exactly the batches one worker would. Only the chief
writes checkpoints, logs and sample grids; after a worker dies, restart every
worker with `--resume` and all of them restore the chief's last backup.

JAX backend: `mirrored` uses `keras.distribution.DataParallel` over every local
device (the global batch is sharded along its first axis); `default` uses one
device. Multi-host JAX is not wired up: `multiworker` is an error there.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from t2i.errors import T2IError

STRATEGIES = ("default", "mirrored", "multiworker")


@dataclass
class Distribution:
    """How this process trains.

    Attributes:
        name: "default", "mirrored" or "multiworker".
        scope: context manager to build and compile the model in.
        num_replicas: replicas in sync (all workers together).
        is_chief: whether this process writes checkpoints and logs.
        worker_index: this worker's index in TF_CONFIG (0 when single).
        num_workers: processes taking part.
    """

    name: str
    scope: object
    num_replicas: int
    is_chief: bool = True
    worker_index: int = 0
    num_workers: int = 1


class _NullScope:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def parse_tf_config(value: str | None) -> dict:
    """Validates TF_CONFIG for multi-worker training; returns it as a dict.

    Raises:
        T2IError: unset, not JSON, or without a worker cluster and task.
    """
    if not value:
        raise T2IError("--strategy multiworker needs the TF_CONFIG environment variable, e.g. "
                       'TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                       '"task": {"type": "worker", "index": 0}}\'')
    try:
        tf_config = json.loads(value)
    except json.JSONDecodeError as e:
        raise T2IError(f"TF_CONFIG is not valid JSON: {e}") from None
    cluster = tf_config.get("cluster", {}) if isinstance(tf_config, dict) else {}
    task = tf_config.get("task", {}) if isinstance(tf_config, dict) else {}
    workers = list(cluster.get("worker", [])) + list(cluster.get("chief", []))
    if not workers:
        raise T2IError("TF_CONFIG has no cluster.worker list")
    if task.get("type") not in ("worker", "chief") or not isinstance(task.get("index"), int):
        raise T2IError('TF_CONFIG needs "task": {"type": "worker", "index": N}')
    n = len(cluster.get(task["type"], []))
    if not 0 <= task["index"] < n:
        raise T2IError(f"TF_CONFIG task index {task['index']} is outside its {n} {task['type']}s")
    return tf_config


def is_chief_process(strategy: str) -> bool:
    """Whether this process writes the run (False only for non-chief multiworker processes)."""
    if strategy != "multiworker":
        return True
    return _is_chief(parse_tf_config(os.environ.get("TF_CONFIG")))


def _is_chief(tf_config: dict) -> bool:
    task = tf_config["task"]
    if "chief" in tf_config["cluster"]:
        return task["type"] == "chief"
    return task["type"] == "worker" and task["index"] == 0


def make_distribution(name: str, batch_size: int) -> Distribution:
    """Creates the strategy (call this before any other TensorFlow work).

    Raises:
        T2IError: an unknown strategy, a batch that does not split evenly
            over the replicas, or a missing / malformed TF_CONFIG.
    """
    import keras

    if name not in STRATEGIES:
        raise T2IError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {name!r}")
    backend = keras.backend.backend()
    if backend == "tensorflow":
        dist = _tensorflow(name)
    elif backend == "jax":
        dist = _jax(name)
    elif name == "default":
        dist = Distribution(name, _NullScope(), 1)
    else:
        raise T2IError(f"--strategy {name} is not supported on the {backend} backend")
    if batch_size % dist.num_replicas:
        raise T2IError(f"train.batch_size {batch_size} does not split evenly over "
                       f"{dist.num_replicas} replicas")
    return dist


def _tensorflow(name: str) -> Distribution:
    import tensorflow as tf

    if name == "default":
        strategy = tf.distribute.get_strategy()
        return Distribution(name, strategy.scope(), 1)
    if name == "mirrored":
        strategy = tf.distribute.MirroredStrategy()
        return Distribution(name, strategy.scope(), strategy.num_replicas_in_sync)
    tf_config = parse_tf_config(os.environ.get("TF_CONFIG"))
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    cluster = tf_config["cluster"]
    return Distribution(name, strategy.scope(), strategy.num_replicas_in_sync,
                        is_chief=_is_chief(tf_config), worker_index=tf_config["task"]["index"],
                        num_workers=len(cluster.get("worker", [])) + len(cluster.get("chief", [])))


def _jax(name: str) -> Distribution:
    import jax
    import keras

    if name == "multiworker":
        raise T2IError("--strategy multiworker is TensorFlow's MultiWorkerMirroredStrategy; on JAX use "
                       "--strategy mirrored (keras.distribution.DataParallel over the local devices)")
    if name == "mirrored":
        devices = jax.devices()
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        return Distribution(name, _NullScope(), len(devices))
    return Distribution(name, _NullScope(), 1)


def local_cluster(num_workers: int) -> list[str]:
    """TF_CONFIG values for `num_workers` workers on this machine (free localhost ports).

    For trying multi-worker training on one machine (tests, benchmarks): give
    worker i the i-th value as TF_CONFIG.
    """
    import socket

    socks = [socket.socket() for _ in range(num_workers)]
    try:
        for s in socks:
            s.bind(("localhost", 0))
        ports = [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    return [json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})
            for i in range(num_workers)]


def shard_by_data(dataset):
    """Marks a `tf.data` dataset to be split by DATA: every worker reads the
    whole (deterministic) stream and keeps its slice of each global batch."""
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)
