"""Where a forward pass runs among synchronised replicas.

The model is written with `keras.ops`, but under TensorFlow's `tf.distribute`
each replica runs the step on its slice of the global batch. Two things must
then still come out as on one device:

* the loss: Keras sums the replicas' gradients, so each replica's per-image
  mean is divided by the number of replicas (`scale_for_replicas`), as Keras'
  own losses do;
* the training noise: every replica draws the noise of the whole global batch
  from the same (mirrored) seed state and keeps its own rows
  (`replica_slice`), so example i gets the same noise with any number of
  replicas.

On JAX, `keras.distribution` shards global arrays instead, so one replica is
seen and nothing changes. Off TensorFlow these helpers are identities.
"""

from __future__ import annotations

import keras
from keras import ops


def replica_context():
    """(replica id, replicas in sync) of the current tf.distribute replica context, else (0, 1)."""
    if keras.backend.backend() != "tensorflow":
        return 0, 1
    import tensorflow as tf

    if not tf.distribute.has_strategy() or tf.distribute.in_cross_replica_context():
        return 0, 1
    ctx = tf.distribute.get_replica_context()
    return ctx.replica_id_in_sync_group, ctx.num_replicas_in_sync


def scale_for_replicas(loss):
    """Divides a per-replica mean loss by the number of replicas in sync (TensorFlow)."""
    _, n = replica_context()
    if n == 1:
        return loss
    return ops.multiply(loss, ops.cast(1.0 / n, loss.dtype))


def logs_for_reduction(logs: dict) -> dict:
    """Shapes step logs so Keras can average them over workers.

    Keras' TensorFlow trainer averages step outputs over replicas with
    `strategy.reduce("MEAN", v, axis=0)` under MultiWorkerMirroredStrategy,
    which fails for scalars; as [1] vectors each replica contributes one row
    and the reduction is the mean over all replicas. Elsewhere: unchanged.
    """
    if keras.backend.backend() != "tensorflow":
        return logs
    import tensorflow as tf

    if not isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
        return logs
    return {k: ops.reshape(v, (1,)) for k, v in logs.items()}


def replica_slice(draw, batch):
    """Rows of a global-batch draw that belong to this replica.

    Args:
        draw: `draw(global_batch)` -> tensor whose first axis is the batch.
        batch: this replica's batch size (the same on every replica).
    """
    replica, n = replica_context()
    if n == 1:
        return draw(batch)
    full = draw(batch * n)
    rest = list(ops.shape(full)[1:])
    return ops.slice(full, [replica * batch] + [0] * len(rest), [batch] + rest)
