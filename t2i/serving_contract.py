"""What an exported t2i model promises a server, in one place (docs/serving.md).

`export/export_savedmodel.py` writes SavedModels to this contract, and `serving/`
(the local model server, the client, the demo) reads them by it. Both import the
names from here, since neither application may import the other.
"""

# Signatures of an exported model (export/export_savedmodel.py documents each).
DEFAULT_SIGNATURE = "serving_default"  # captions, seed -> images, alignments
TRACE_SIGNATURE = "trace"              # ... and the canvas after every step
SAMPLE_SIGNATURE = "sample"            # captions, seed, temperature -> images, alignments
PLAIN_SIGNATURE = "plain"              # as serving_default, always the paper's plain sampler
SCORE_SIGNATURE = "score"              # captions, images -> the lower bound
SHARPENED_SIGNATURE = "sharpened"      # runs with a sharpener only

# The warmup requests TF Serving replays before a version serves, and its limit on them
# (WarmupConsts::kMaxNumRecords).
WARMUP_FILE = "assets.extra/tf_serving_warmup_requests"
MAX_WARMUP_RECORDS = 1000

# Seeds are int64 tensors.
INT64_MIN, INT64_MAX = -2**63, 2**63 - 1
