"""Which versions are loaded: the model table, the file-system poller, warmup.

TF Serving's ServerCore + AspiredVersionsManager semantics: a version is
loaded and its `assets.extra/tf_serving_warmup_requests` replayed before it
is AVAILABLE; "latest" switches atomically and only then are versions that
left the policy unloaded (in-flight requests keep the version they started
on); a failed version is retried once its directory changes.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass

import grpc

from serving import model_config as mc
from serving.server.servable import Servable
from serving.server.status import ServingError, clean_tf_message, grpc_code
from serving.server.tensors import _tensorflow
from serving.states import AVAILABLE, END, LOADING, START, STATE_NAMES, UNLOADING
from t2i import serving_contract as contract
from t2i.errors import T2IError

log = logging.getLogger("t2i.serving")

WARMUP_FILE = os.path.join(*contract.WARMUP_FILE.split("/"))
MAX_WARMUP_RECORDS = contract.MAX_WARMUP_RECORDS


@dataclass
class _Version:
    version: int
    state: int = START
    error: tuple | None = None        # (grpc.StatusCode, message) if the load failed
    servable: Servable | None = None
    fingerprint: tuple | None = None  # of the directory when a load failed


class _Model:
    def __init__(self, config: mc.ModelConfig):
        self.config = config
        self.versions: dict[int, _Version] = {}
        self.last_scan_note = None


def _fingerprint(path: str) -> tuple:
    parts = []
    for rel in ("", "saved_model.pb", "saved_model.pbtxt", "variables",
                os.path.join("variables", "variables.index"), WARMUP_FILE):
        try:
            st = os.stat(os.path.join(path, rel))
            parts.append((rel, st.st_mtime_ns, st.st_size))
        except OSError:
            parts.append((rel, None, None))
    return tuple(parts)



class VersionManager:
    """The models being served and their versions (no network: see ModelServer).

    configs: `serving.model_config.ModelConfig`s; `model_config_file`, when
    given, is re-read every `config_poll_wait_s` seconds (0 = never). Versions
    are scanned every `poll_wait_s` seconds by `start_polling()` (0 = only by
    `poll_once()`).
    """

    def __init__(self, configs, *, model_config_file: str | None = None,
                 poll_wait_s: float = 1.0, config_poll_wait_s: float = 0.0,
                 enable_model_warmup: bool = True, warmup_iterations: int = 1,
                 saved_model_tags=("serve",), tensor_content: bool = False):
        configs = list(configs)
        names = [c.name for c in configs]
        if len(set(names)) != len(names):
            raise T2IError(f"model names must be unique, got {names}")
        if warmup_iterations < 1:
            raise T2IError("--num_request_iterations_for_warmup must be >= 1")
        self._models: dict[str, _Model] = {c.name: _Model(c) for c in configs}
        self.model_config_file = model_config_file
        self.poll_wait_s = float(poll_wait_s)
        self.config_poll_wait_s = float(config_poll_wait_s or 0)
        self.enable_model_warmup = bool(enable_model_warmup)
        self.warmup_iterations = int(warmup_iterations)
        self.saved_model_tags = tuple(saved_model_tags)
        self.tensor_content = bool(tensor_content)
        self._lock = threading.Lock()          # the model table; never held while running a model
        self._poll_lock = threading.RLock()    # serialises polls and config reloads
        self._stopping = threading.Event()
        self._poller = None

    def start_polling(self) -> None:
        """Start the background poller if either poll interval is > 0."""
        if self.poll_wait_s > 0 or self.config_poll_wait_s > 0:
            self._poller = threading.Thread(target=self._poll_loop, name="serving-poller",
                                            daemon=True)
            self._poller.start()

    def stop_polling(self, timeout: float) -> None:
        """Stop polling and mark every loaded version END (its servable released)."""
        self._stopping.set()
        if self._poller is not None:
            self._poller.join(timeout=timeout)
        with self._lock:
            for model in self._models.values():
                for rec in model.versions.values():
                    if rec.state == AVAILABLE:
                        rec.state, rec.servable = END, None

    def _versions_changed(self) -> None:
        """Called after every poll (the server updates its health status here)."""

    def all_models_available(self) -> bool:
        """Every model has at least one AVAILABLE version."""
        with self._lock:
            return bool(self._models) and all(
                any(r.state == AVAILABLE for r in m.versions.values())
                for m in self._models.values())

    def _poll_loop(self) -> None:
        next_fs = time.monotonic() + self.poll_wait_s if self.poll_wait_s > 0 else float("inf")
        next_cfg = (time.monotonic() + self.config_poll_wait_s
                    if self.config_poll_wait_s > 0 and self.model_config_file else float("inf"))
        while not self._stopping.is_set():
            wait = min(next_fs, next_cfg) - time.monotonic()
            if wait == float("inf"):
                return
            if self._stopping.wait(max(wait, 0.0)):
                return
            try:
                now = time.monotonic()
                if now >= next_cfg:
                    next_cfg = now + self.config_poll_wait_s
                    self._reload_config_file()
                if now >= next_fs:
                    next_fs = now + self.poll_wait_s
                    self.poll_once()
            except Exception:  # keep polling whatever happens
                log.exception("file system poll failed")

    def _reload_config_file(self) -> None:
        try:
            configs = mc.parse_model_config_file(self.model_config_file)
        except T2IError as e:
            log.error("Keeping the current config: %s", e)
            return
        with self._lock:
            current = [m.config for m in self._models.values()]
        if configs != current:
            log.info("Reloading %s", self.model_config_file)
            self.apply_config(configs)

    def apply_config(self, configs) -> None:
        """Replace the model list (HandleReloadConfigRequest / config file reload)."""
        configs = list(configs)
        with self._poll_lock:
            with self._lock:
                wanted = {c.name: c for c in configs}
                removed = [self._models.pop(n) for n in list(self._models) if n not in wanted]
                for name, cfg in wanted.items():
                    if name in self._models:
                        self._models[name].config = cfg
                    else:
                        self._models[name] = _Model(cfg)
                for model in removed:
                    for rec in model.versions.values():
                        if rec.state == AVAILABLE:
                            rec.state, rec.servable = END, None
            for model in removed:
                log.info("Unloaded all versions of removed model %s", model.config.name)
            self.poll_once()

    def poll_once(self) -> None:
        """Scan every base path now: load new versions, unload what left the policy."""
        with self._poll_lock:
            with self._lock:
                models = list(self._models.values())
            for model in models:
                if self._stopping.is_set():
                    break
                self._sync_model(model)
            self._versions_changed()

    def _sync_model(self, model: _Model) -> None:
        cfg = model.config
        found = mc.scan_versions(cfg.base_path)
        if found is None:
            note = (f"Could not find base path {cfg.base_path} for servable {cfg.name}; "
                    f"expected {cfg.base_path}/<version number>/saved_model.pb")
            if note != model.last_scan_note:
                log.warning("%s", note)
            model.last_scan_note = note
            return  # like TF Serving: a failed poll changes nothing
        if not found:
            note = (f"No versions of servable {cfg.name} found under base path {cfg.base_path}. "
                    f"Did you forget to name your leaf directory as a number (eg. '/1/')?")
        else:
            note = None
        if note and note != model.last_scan_note:
            log.warning("%s", note)
        model.last_scan_note = note
        aspired = mc.aspired_versions(cfg.policy, found)

        for version in sorted(aspired, reverse=True):
            if self._stopping.is_set():
                return
            with self._lock:
                rec = model.versions.get(version)
            path = found[version]
            if rec is not None and rec.state in (START, LOADING, AVAILABLE, UNLOADING):
                continue
            if rec is not None and rec.error is not None and rec.fingerprint == _fingerprint(path):
                continue  # failed before and unchanged since
            self._load_version(model, version, path)

        with self._lock:
            any_aspired_ok = any(model.versions.get(v) is not None
                                 and model.versions[v].state == AVAILABLE for v in aspired)
            leaving = [rec for v, rec in model.versions.items()
                       if rec.state == AVAILABLE and v not in aspired
                       and (any_aspired_ok or not aspired)]
            for rec in leaving:  # out of "latest" before anything is released
                rec.state = UNLOADING
        for rec in leaving:
            with self._lock:
                rec.servable = None  # in-flight requests hold their own reference
                rec.state = END
            log.info("Unloaded servable version {name: %s version: %d}", cfg.name, rec.version)

    def _load_version(self, model: _Model, version: int, path: str) -> None:
        name = model.config.name
        rec = _Version(version=version, state=START)
        with self._lock:
            model.versions[version] = rec
            rec.state = LOADING
        fingerprint = _fingerprint(path)
        log.info("Loading servable: {name: %s version: %d} from %s", name, version, path)
        t0 = time.monotonic()
        error = None
        servable = None
        try:
            servable = Servable.load(name, version, path, self.saved_model_tags)
            if self.enable_model_warmup:
                self._warmup(servable)
        except ServingError as e:
            error = (e.code, e.message)
        except Exception as e:  # noqa: BLE001 - any load failure is reported, not raised
            tf = _tensorflow()
            if isinstance(e, tf.errors.OpError):
                error = (grpc_code(e.error_code), clean_tf_message(e.message))
            else:
                error = (grpc.StatusCode.UNKNOWN, f"{type(e).__name__}: {e}")
        with self._lock:
            if error is None:
                rec.servable, rec.state = servable, AVAILABLE
            else:
                rec.servable, rec.state, rec.error, rec.fingerprint = None, END, error, fingerprint
        if error is None:
            log.info("Successfully loaded servable version {name: %s version: %d} in %.2fs",
                     name, version, time.monotonic() - t0)
        else:
            log.error("Loading servable: {name: %s version: %d} failed: %s: %s",
                      name, version, error[0].name, error[1])

    def _warmup(self, servable: Servable) -> None:
        """Replay assets.extra/tf_serving_warmup_requests through Predict."""
        tf = _tensorflow()
        from google.protobuf.message import DecodeError
        from tensorflow_serving.apis import prediction_log_pb2
        path = os.path.join(servable.path, WARMUP_FILE)
        if not os.path.exists(path):
            log.info("No warmup data file found at %s", path)
            return
        count = 0
        try:
            for record in tf.data.TFRecordDataset(path):
                entry = prediction_log_pb2.PredictionLog()
                try:
                    entry.ParseFromString(record.numpy())
                except DecodeError:
                    raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                                       f"Failed to parse warmup record #{count} from {path}") from None
                kind = entry.WhichOneof("log_type")
                if kind == "predict_log":
                    for _ in range(self.warmup_iterations):
                        try:
                            servable.predict(entry.predict_log.request, self.tensor_content)
                        except ServingError as e:
                            raise ServingError(e.code, f"warmup request #{count} from {path} "
                                                       f"failed: {e.message}") from None
                elif kind is not None:
                    raise ServingError(grpc.StatusCode.UNIMPLEMENTED,
                                       f"Unsupported log_type for warmup: {kind} (this local "
                                       f"server replays predict_log only)")
                count += 1
                if count > MAX_WARMUP_RECORDS:
                    raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                                       f"Number of warmup records exceeds the maximum "
                                       f"({MAX_WARMUP_RECORDS}) at {path}")
        except tf.errors.DataLossError as e:
            raise ServingError(grpc.StatusCode.DATA_LOSS,
                               f"{clean_tf_message(e.message)}. Please verify your warmup data "
                               f"is in TFRecord format.") from None
        log.info("Finished reading warmup data for model at %s. Number of warmup records read: %d.",
                 path, count)


    def model_status(self, name: str) -> dict[int, tuple[str, str | None]]:
        """{version: (state name, error message or None)} for tests and logs."""
        with self._lock:
            model = self._models.get(name)
            if model is None:
                return {}
            return {v: (STATE_NAMES[r.state], r.error[1] if r.error else None)
                    for v, r in sorted(model.versions.items(), reverse=True)}

    @staticmethod
    def _requested_version(model, spec) -> int | None:
        """The version a ModelSpec names (a number or a label), or None for the latest."""
        which = spec.WhichOneof("version_choice")
        if which == "version_label":
            version = model.config.version_labels.get(spec.version_label) if model else None
            if version is None:
                raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                                   f"Unrecognized servable version label: {spec.version_label}")
            return version
        if which == "version":
            return spec.version.value
        return None

    def resolve(self, spec) -> Servable:
        """ModelSpec -> the AVAILABLE servable it names (ServerCore semantics)."""
        name = spec.name
        if not name:
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, "ModelSpec has no name specified.")
        with self._lock:
            model = self._models.get(name)
            version = self._requested_version(model, spec)
            if version is None:
                available = ([v for v, r in model.versions.items() if r.state == AVAILABLE]
                             if model else [])
                if not available:
                    raise ServingError(grpc.StatusCode.NOT_FOUND,
                                       f"Servable not found for request: Latest({name})")
                return model.versions[max(available)].servable
            rec = model.versions.get(version) if model else None
            if rec is None or rec.state != AVAILABLE:
                raise ServingError(grpc.StatusCode.NOT_FOUND,
                                   f"Servable not found for request: Specific({name}, {version})")
            return rec.servable
