"""Which models to serve, and which of their versions: TF Serving's config rules.

`tensorflow_model_server` serves either one model (`--model_name`,
`--model_base_path`) or the models of a text-format
`tensorflow.serving.ModelServerConfig` (`--model_config_file`):

    model_config_list {
      config {
        name: "t2i"
        base_path: "/models/t2i"
        model_platform: "tensorflow"
        model_version_policy { specific { versions: 1 versions: 2 } }  # or latest { num_versions: N } | all {}
        version_labels { key: "stable" value: 1 }
        version_labels { key: "canary" value: 2 }
      }
    }

A version is a subdirectory of the base path whose name parses as an integer
with absl::SimpleAtoi (`1`, `00000123`); anything else (`v1`, `.tmp-2`,
`1.0`) is ignored. The default policy is `latest { num_versions: 1 }`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from t2i.errors import T2IError

DEFAULT_POLICY = ("latest", 1)
_PLATFORMS = ("", "tensorflow")
# absl::SimpleAtoi: optional ASCII whitespace around an optionally signed
# base-10 integer that fits in int64.
_SIMPLE_ATOI = re.compile(r"^[ \t\n\v\f\r]*([+-]?[0-9]+)[ \t\n\v\f\r]*$")
_INT64_MAX = 2**63 - 1


@dataclass(frozen=True)
class ModelConfig:
    """One served model.

    policy: ("latest", n) | ("all",) | ("specific", frozenset of versions).
    version_labels: {label: version}.
    """

    name: str
    base_path: str
    policy: tuple = DEFAULT_POLICY
    version_labels: Mapping[str, int] = field(default_factory=dict)


def parse_version_dir(name: str) -> int | None:
    """The version number of a directory name, or None if it is not one.

    Follows TF Serving's ParseVersionNumber (absl::SimpleAtoi into int64);
    negative numbers are not versions.
    """
    m = _SIMPLE_ATOI.match(name)
    if not m:
        return None
    value = int(m.group(1))
    if value < 0 or value > _INT64_MAX:
        return None
    return value


def scan_versions(base_path: str) -> dict[int, str] | None:
    """{version: directory} under `base_path`; None if base_path is not a directory.

    If two names parse to the same number ("1" and "001"), the
    lexicographically first one wins, so the choice is stable.
    """
    try:
        names = sorted(os.listdir(base_path))
    except (FileNotFoundError, NotADirectoryError):
        return None
    found: dict[int, str] = {}
    for name in names:
        version = parse_version_dir(name)
        if version is None or version in found:
            continue
        path = os.path.join(base_path, name)
        if os.path.isdir(path):
            found[version] = path
    return found


def aspired_versions(policy: tuple, versions: Iterable[int]) -> set[int]:
    """The versions a policy wants loaded, out of those found on disk."""
    versions = set(versions)
    kind = policy[0]
    if kind == "latest":
        n = max(int(policy[1]), 1)
        return set(sorted(versions, reverse=True)[:n])
    if kind == "all":
        return versions
    if kind == "specific":
        return versions & set(policy[1])
    raise ValueError(f"unknown version policy {policy!r}")


def describe_policy(policy: tuple) -> str:
    if policy[0] == "latest":
        return f"latest {{ num_versions: {max(int(policy[1]), 1)} }}"
    if policy[0] == "all":
        return "all {}"
    return "specific { " + " ".join(f"versions: {v}" for v in sorted(policy[1])) + " }"


def single_model_config(name: str, base_path: str) -> ModelConfig:
    """The config `--model_name` + `--model_base_path` stand for."""
    if not name:
        raise T2IError("--model_name must not be empty")
    if not base_path:
        raise T2IError("--model_base_path must not be empty")
    return ModelConfig(name=name, base_path=os.path.abspath(base_path))


def configs_from_proto(proto, source: str = "config") -> list[ModelConfig]:
    """[ModelConfig] from a tensorflow.serving.ModelServerConfig message."""
    which = proto.WhichOneof("config")
    if which is None:
        return []
    if which != "model_config_list":
        raise T2IError(f"{source}: only model_config_list is supported, got {which}")
    out: list[ModelConfig] = []
    seen: set[str] = set()
    for i, cfg in enumerate(proto.model_config_list.config):
        where = f"{source}: model_config_list.config[{i}]"
        if not cfg.name:
            raise T2IError(f"{where}: name is empty")
        if cfg.name in seen:
            raise T2IError(f"{where}: model {cfg.name!r} is listed more than once")
        seen.add(cfg.name)
        if not cfg.base_path:
            raise T2IError(f"{where} ({cfg.name}): base_path is empty")
        if cfg.model_platform not in _PLATFORMS:
            raise T2IError(f"{where} ({cfg.name}): model_platform {cfg.model_platform!r} "
                           f"is not supported (only 'tensorflow')")
        policy = DEFAULT_POLICY
        if cfg.HasField("model_version_policy"):
            kind = cfg.model_version_policy.WhichOneof("policy_choice")
            if kind == "latest":
                policy = ("latest", max(int(cfg.model_version_policy.latest.num_versions), 1))
            elif kind == "all":
                policy = ("all",)
            elif kind == "specific":
                versions = frozenset(int(v) for v in cfg.model_version_policy.specific.versions)
                if not versions:
                    raise T2IError(f"{where} ({cfg.name}): model_version_policy.specific "
                                   f"lists no versions")
                policy = ("specific", versions)
        labels = {str(k): int(v) for k, v in cfg.version_labels.items()}
        for label, version in labels.items():
            if not label:
                raise T2IError(f"{where} ({cfg.name}): empty version label")
            if policy[0] == "specific" and version not in policy[1]:
                raise T2IError(f"{where} ({cfg.name}): version label {label!r} points at "
                               f"version {version}, which the policy "
                               f"{describe_policy(policy)} never loads")
        out.append(ModelConfig(name=cfg.name, base_path=os.path.abspath(cfg.base_path),
                               policy=policy, version_labels=labels))
    return out


def parse_model_config_text(text: str, source: str = "config") -> list[ModelConfig]:
    """[ModelConfig] from the text format of tensorflow.serving.ModelServerConfig."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    proto = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(text, proto)
    except text_format.ParseError as e:
        raise T2IError(f"{source}: not a text-format tensorflow.serving.ModelServerConfig: {e}") from None
    return configs_from_proto(proto, source)


def parse_model_config_file(path: str) -> list[ModelConfig]:
    """[ModelConfig] from a --model_config_file."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise T2IError(f"cannot read --model_config_file {path}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise T2IError(f"--model_config_file {path} is not UTF-8 text") from None
    configs = parse_model_config_text(text, source=path)
    if not configs:
        raise T2IError(f"--model_config_file {path} lists no models (expected model_config_list {{ config {{ ... }} }})")
    return configs
