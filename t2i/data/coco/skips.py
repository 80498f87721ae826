"""What the COCO loaders skip, counted and announced (never dropped silently).

A report is {kind: {"count", "examples"[, "captions"]}} with a kind for every
entry of `SKIPS`; `skip` adds to it, `warn` prints one `t2i: warning: COCO:`
line per kind that skipped something.
"""

from __future__ import annotations

import re
import sys
from typing import Iterable

EXAMPLES = 5  # examples kept per report entry

# Report kinds: each is a skip, counted with a few examples and announced on stderr.
SKIPS = {
    "missing_images": "image file(s) that do not exist, with their captions",
    "unreadable_images": "image file(s) that cannot be decoded as JPEG, with their captions",
    "empty_captions": "caption(s) without any word",
    "unknown_image_captions": "caption(s) whose image_id is not among the file's images",
    "split_file_unmatched": "split-file image(s) that have no entry in the COCO captions files",
    "long_captions": "validation/test caption(s) longer than text.max_caption_length tokens",
}


def new_report() -> dict:
    return {kind: {"count": 0, "examples": []} for kind in SKIPS}


def skip(report: dict, kind: str, example: str, count: int = 1) -> None:
    entry = report[kind]
    entry["count"] += count
    if len(entry["examples"]) < EXAMPLES:
        entry["examples"].append(example)


def warn(report: dict, kinds: Iterable[str]) -> None:
    for kind in kinds:
        entry = report[kind]
        if entry["count"]:
            more = f" ({entry['captions']} captions)" if "captions" in entry else ""
            print(f"t2i: warning: COCO: skipped {entry['count']} {SKIPS[kind]}{more} "
                  f"(e.g. {', '.join(entry['examples'][:3])}); see the datasets' report",
                  file=sys.stderr)


def first_line(text: str) -> str:
    """The gist of a TensorFlow error: first line, without the node name and op tag."""
    text = re.sub(r"\{\{[^}]*\}\}|\[Op:[^\]]*\].*", "", text).strip()
    return text.splitlines()[0][:200] if text else "unknown error"
