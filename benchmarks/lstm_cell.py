"""t2i's fused LSTMCell against keras.layers.LSTMCell at the decoder's shapes (batch 100, input 406, 300 units).

Same initialiser and parameter count; reports the largest difference of h (bit-identical or not) and
the time of a forward+backward step in a tf.function. `python benchmarks/lstm_cell.py`
"""

import time, numpy as np, keras, tensorflow as tf
from keras import ops
from t2i.layers import LSTMCell
B, D, U = 100, 406, 300
rng = np.random.default_rng(0)
x = tf.constant(rng.standard_normal((B, D)).astype("float32")); h = tf.constant(rng.standard_normal((B, U)).astype("float32") * .1); c = tf.constant(rng.standard_normal((B, U)).astype("float32") * .1)
ours = LSTMCell(U, 0.01); ours.build((None, D))
ker = keras.layers.LSTMCell(U, kernel_initializer=keras.initializers.RandomNormal(0, .01),
      recurrent_initializer=keras.initializers.RandomNormal(0, .01), unit_forget_bias=False); ker.build((None, D))
W = ours.kernel.numpy(); ker.kernel.assign(W[:D]); ker.recurrent_kernel.assign(W[D:])
print("params", sum(np.prod(v.shape) for v in ours.weights), sum(np.prod(v.shape) for v in ker.weights))
def f_ours(x, h, c):
    with tf.GradientTape() as t:
        t.watch([x, h, c]); hh, cc = ours(x, h, c); l = tf.reduce_sum(hh * cc)
    return hh, cc, t.gradient(l, [x] + ours.trainable_weights)
def f_ker(x, h, c):
    with tf.GradientTape() as t:
        t.watch([x, h, c]); hh, (h2, cc) = ker(x, [h, c]); l = tf.reduce_sum(hh * cc)
    return hh, cc, t.gradient(l, [x] + ker.trainable_weights)
fo, fk = tf.function(f_ours), tf.function(f_ker)
a, b = fo(x, h, c), fk(x, h, c)
print("h max diff", float(tf.reduce_max(tf.abs(a[0]-b[0]))), "bit-identical h:", bool(tf.reduce_all(a[0] == b[0])))
res = {"fused (t2i LSTMCell)": [], "keras.layers.LSTMCell": []}
for r in range(5):
    for name, f in (("fused (t2i LSTMCell)", fo), ("keras.layers.LSTMCell", fk)):
        t0 = time.perf_counter()
        for _ in range(200): out = f(x, h, c)
        out[0].numpy(); res[name].append((time.perf_counter() - t0) / 200 * 1e3)
for k, v in res.items(): print(k, "ms per fwd+bwd step (median of 5x200):", round(sorted(v)[2], 3))
