"""Microsoft COCO captions at 32x32 (docs/model.md §12): files -> tf.data pipelines.

`make_coco_datasets(config, tokenizer)` builds the same kind of pipelines as
the MNIST one (`t2i.data.pipeline`): every element is a dict
{"images": float32 [B, H, W, 3] in [0, 1], "tokens": int64 [B, L]} (0 pads),
with H x W the model's image size (32 x 32 for `coco_32`).

Sources (`data.coco.source`):

* "json": the official release under `data.coco.root`:
  `annotations/captions_train2014.json`, `annotations/captions_val2014.json`
  ({"images": [{"id", "file_name", ...}], "annotations": [{"id",
  "image_id", "caption"}, ...]}) and the JPEG folders `train2014/`,
  `val2014/`. Images are decoded and resized inside tf.data
  (`decode_image`); `data.coco.cache` keeps them once as uint8 `.npy` files.
* "npy": the authors' preprocessed files under `data.coco.root`:
  `{train,dev,test}-images-32x32.npy` (N x 3072, channel-major, floats in
  [0, 1]), `{split}-captions.npy` (padded word-index matrix),
  `{split}-captions-len.npy` (last column: the length), `{split}-cap2im.npy`
  (caption -> image row) and `dictionary.pkl` (word -> index). Their word
  indices are turned back into strings through the inverted dictionary, so
  the rest is the same string + image pipeline (their "UNK" becomes the
  ordinary word "unk"; lengths are recounted with our tokenisation). "dev"
  is the validation split; `data.coco.captions_per_image` does not apply (the
  authors already chose 5 per image).

Examples and splits (json source):

* One example per (caption, image) pair, with the first
  `data.coco.captions_per_image` (5) captions of each image, "first" meaning
  the lowest annotation ids (the paper's "first 5 captions"; COCO lists
  some images with 6 or 7). A caption without words among them is skipped
  and reported, not replaced by the 6th. Images are ordered by id, their
  captions by annotation id, whatever the order inside the JSON.
* Without `data.coco.split_file`: train2014 is the training split; val2014,
  sorted by image id, gives its first `data.coco.validation_images` (5000) images
  to validation and the next `data.coco.test_images` (5000) to test; the rest of
  val2014 is not used (the paper trains on the 82,783 train2014 images).
  The split is decided on the JSON's image lists, so a missing file never
  moves an image from one split to another.
* With a Karpathy-style split file (`dataset_coco.json`: {"images":
  [{"filepath", "filename", "split", "cocoid", "sentences": [{"raw"}]}]}):
  "train" and "restval" images train, "val" validates, "test" tests.
  Captions come from the official JSONs (same first-5 rule); only if
  neither of them exists are the split file's "raw" sentences used, the
  first 5 in listed order.

Training (docs/model.md §10, §12):

* keeps captions with `data.coco.min_caption_length` <= tokens <
  `data.coco.max_train_caption_length` (7 <= len < 30, as the original code);
  validation and test keep every length up to `text.max_caption_length`
  (longer ones are skipped and reported).
* `BatchPlan` draws each epoch with `np.random.default_rng([data.seed, e])`:
  with `data.coco.bucketing`, captions are grouped by exact token length,
  shuffled within each bucket, and each batch comes from a bucket picked
  uniformly at random among those not yet exhausted (its next <=
  `train.batch_size` captions); without bucketing, one shuffled pass in
  batches padded to the longest caption. Either way an epoch is one pass
  over the examples, so it has a fixed number of batches
  (`steps_per_epoch`); a nonzero `train.steps_per_epoch` instead takes the
  first that many batches of passes drawn with [seed, e], [seed, e, 1], ...
* the stream is endless over epochs `initial_epoch`, `initial_epoch + 1`,
  ...; batches never straddle epochs, so with `model.fit(train,
  steps_per_epoch=steps_per_epoch, initial_epoch=e)` Keras epoch e sees data
  epoch e, and a resumed run sees the same batches as an uninterrupted one.

Vocabulary: `build_vocabulary` counts the tokens of the training captions
(`t2i.text_numpy.normalize` + whitespace split, the tokens the in-graph
`CaptionTokenizer` produces); `resolve_coco_config(config)` fills an empty
`text.vocabulary` with it, and the run's config.json stores the result.

Bad input never leaves a silent hole. A missing or malformed JSON, pickle or
`.npy` is a `T2IError` naming the file and the problem. Image files that do
not exist, that are not JPEGs, or that fail to decode; captions without words;
captions of unknown images; over-long validation/test captions: these are
skipped, counted in the datasets' `report` (with a few examples) and announced
by a `t2i: warning: COCO: ...` line on stderr. Without a cache, training
JPEGs are checked for existence and a JPEG header before training, but a file
damaged further in (e.g. truncated) is only found when the stream decodes
it, which then stops with TensorFlow's "Invalid JPEG data" error; with
`data.coco.cache` (or `build_cache`), every image is fully decoded once
up front and such files are skipped and reported.

Example:

    config = resolve_coco_config(config)          # fills text.vocabulary
    tokenizer = CaptionTokenizer(config.text)
    data = make_coco_datasets(config, tokenizer)
    model.fit(data.train, steps_per_epoch=data.steps_per_epoch,
              validation_data=data.validation, epochs=config.train.epochs)

Modules, one concern each:

    skips.py        what is skipped, counted and announced (SKIPS)
    vocabulary.py   caption_length, build_vocabulary, resolve_coco_config
    images.py       decode_image, decode_files: JPEG -> uint8 at the model's size
    splits.py       CocoSplit, CocoData, the training length filter
    json_source.py  the official captions JSONs (and a Karpathy split file)
    npy_source.py   the authors' preprocessed arrays
    loading.py      load_coco: a source read once per process
    cache.py        build_cache: the uint8 image cache
    batches.py      BatchPlan: length buckets and epochs
    pipeline.py     make_coco_datasets, open_coco: the tf.data pipelines (a `t2i.data.datasets.Datasets`)

Tiny COCO look-alikes on disk for tests and benchmarks: `tests/fixtures/coco.py`.
"""

from t2i.data.coco.batches import BatchPlan
from t2i.data.coco.cache import build_cache
from t2i.data.coco.images import decode_files, decode_image
from t2i.data.coco.json_source import CAPTION_FILES
from t2i.data.coco.loading import load_coco
from t2i.data.coco.npy_source import NPY_SIZE, NPY_SPLITS
from t2i.data.coco.pipeline import make_coco_datasets, open_coco, spread_captions
from t2i.data.coco.skips import SKIPS
from t2i.data.coco.splits import SPLITS, CocoData, CocoSplit
from t2i.data.coco.vocabulary import build_vocabulary, caption_length, resolve_coco_config

__all__ = ["BatchPlan", "CAPTION_FILES", "CocoData", "CocoSplit", "NPY_SIZE", "NPY_SPLITS", "SKIPS", "SPLITS",
           "build_cache", "build_vocabulary", "caption_length", "decode_files", "decode_image", "load_coco",
           "make_coco_datasets", "open_coco", "resolve_coco_config", "spread_captions"]
