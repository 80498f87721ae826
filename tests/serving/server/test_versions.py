"""serving/server/versions.py: warmup before a version is available, failed loads, hot reload,
specific versions, labels and config reloads.
"""

import os
import threading
import time

import grpc
import numpy as np
import tensorflow as tf
from grpc_health.v1 import health_pb2
from tensorflow_serving.apis import get_model_status_pb2, model_pb2

from serving import model_config as mc
from serving import server as srv
from tests.serving.server.tiny import (INVALID, Stubs, hammer, predict_request, publish, rpc_error,
                                       start_server, wait_for, write_warmup)


def test_warmup_is_replayed_before_the_version_is_available(tiny, tmp_path):
    base = str(tmp_path / "m")
    os.makedirs(base)
    publish(tiny["tag1"], base, 1)
    server = start_server([mc.ModelConfig("m", base)])
    stubs = Stubs(server.port)
    try:
        req = predict_request(captions=None, signature="count")
        req.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([0], np.int64)))
        # The 3 warmup requests ran on this version before anyone could call it.
        assert tf.make_ndarray(stubs.predict.Predict(req, timeout=10).outputs["calls"]).tolist() == [3]
    finally:
        stubs.close()
        server.stop(grace_s=1)
    cold = start_server([mc.ModelConfig("m", base)], enable_model_warmup=False)
    try:
        assert cold.resolve(model_pb2.ModelSpec(name="m")).signatures["count"].fn(
            x=tf.constant([0], tf.int64))["calls"].numpy().tolist() == [0]
    finally:
        cold.stop(grace_s=1)


def test_version_failing_warmup_never_serves_and_old_version_keeps_serving(tiny, tmp_path):
    base = str(tmp_path / "m")
    os.makedirs(base)
    publish(tiny["tag1"], base, 1)
    server = start_server([mc.ModelConfig("m", base)], file_system_poll_wait_seconds=0.05)
    stubs = Stubs(server.port)
    seen, errors, stop = [], [], threading.Event()
    thread = threading.Thread(target=hammer, args=(stubs, seen, errors, stop))
    try:
        thread.start()
        publish(tiny["broken"], base, 2)
        wait_for(lambda: server.model_status("m").get(2, ("",))[0] == "END", what="v2 to fail")
        stop.set()
        thread.join(timeout=30)
        assert not errors, errors[:3]
        assert seen and set(seen) == {(1, 1)}  # v2 never answered, even while warming up
        by_version = {s.version: s for s in stubs.status("m").model_version_status}
        failed = by_version[2]
        assert failed.state == get_model_status_pb2.ModelVersionStatus.END
        assert failed.status.error_code == INVALID.value[0]
        assert "warmup request #2" in failed.status.error_message
        assert "empty caption" in failed.status.error_message
        assert by_version[1].state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
        assert stubs.predict.Predict(predict_request(), timeout=10).model_spec.version.value == 1
        assert rpc_error(stubs.predict.Predict, predict_request(version=2),
                         timeout=10).code() == grpc.StatusCode.NOT_FOUND
        health = stubs.health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        # A failed version is retried once its directory changes (here: a fixed warmup file).
        write_warmup(os.path.join(base, "2"), [predict_request(("ok",))])
        wait_for(lambda: server.model_status("m").get(2) == ("AVAILABLE", None),
                 what="the fixed v2 to load")
        assert stubs.predict.Predict(predict_request(), timeout=10).model_spec.version.value == 2
    finally:
        stop.set()
        thread.join(timeout=30)
        stubs.close()
        server.stop(grace_s=1)


def test_hot_reload_switches_versions_without_failing_requests(tiny, tmp_path):
    base = str(tmp_path / "m")
    os.makedirs(base)
    publish(tiny["tag1"], base, 1)
    server = start_server([mc.ModelConfig("m", base)], file_system_poll_wait_seconds=0.05)
    stubs = Stubs(server.port)
    seen, errors, stop = [], [], threading.Event()
    threads = [threading.Thread(target=hammer, args=(stubs, seen, errors, stop))
               for _ in range(2)]
    try:
        for t in threads:
            t.start()
        wait_for(lambda: len(seen) >= 5, what="first answers")
        publish(tiny["slow_warmup"], base, 2)
        wait_for(lambda: server.model_status("m").get(2, ("",))[0] == "LOADING", what="loading")
        # While version 2 loads and warms up, it is neither "latest" nor addressable.
        deadline = time.monotonic() + 30
        while server.model_status("m")[2][0] == "LOADING" and time.monotonic() < deadline:
            during = stubs.predict.Predict(predict_request(), timeout=10).model_spec.version.value
            late = server.model_status("m")[2][0]
            assert during == 1 or late != "LOADING"
        wait_for(lambda: seen and seen[-1][0] == 2, what="answers from version 2")
        n = len(seen)
        wait_for(lambda: len(seen) >= n + 10, what="more answers")
        wait_for(lambda: server.model_status("m").get(1, ("",))[0] == "END",
                 what="version 1 to unload")
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    try:
        assert not errors, errors[:3]
        assert set(seen) <= {(1, 1), (2, 2)}  # version and weights agree
        assert {v for v, _ in seen} == {1, 2}
        states = {s.version: s.state for s in stubs.status("m").model_version_status}
        assert states == {2: get_model_status_pb2.ModelVersionStatus.AVAILABLE,
                          1: get_model_status_pb2.ModelVersionStatus.END}
        assert stubs.predict.Predict(predict_request(), timeout=10).model_spec.version.value == 2
    finally:
        stubs.close()
        server.stop(grace_s=1)


def test_specific_versions_labels_and_config_reload(tiny, tmp_path):
    base = str(tmp_path / "m")
    os.makedirs(base)
    publish(tiny["tag1"], base, 1)
    publish(tiny["tag2"], base, 2)
    config = tmp_path / "models.config"
    config.write_text(f"""model_config_list {{ config {{
        name: "m" base_path: "{base}" model_platform: "tensorflow"
        model_version_policy {{ specific {{ versions: 1 versions: 2 }} }}
        version_labels {{ key: "stable" value: 1 }} version_labels {{ key: "canary" value: 2 }} }} }}""")
    server = srv.ModelServer(model_config_file=str(config), port=0,
                             file_system_poll_wait_seconds=0).start()
    stubs = Stubs(server.port)

    def version_of(**spec):
        return stubs.predict.Predict(predict_request(**spec), timeout=10).model_spec.version.value

    try:
        assert version_of() == 2
        assert version_of(version=1) == 1 and version_of(version=2) == 2
        assert version_of(label="stable") == 1 and version_of(label="canary") == 2
        err = rpc_error(stubs.predict.Predict, predict_request(label="beta"), timeout=10)
        assert (err.code(), err.details()) == (INVALID, "Unrecognized servable version label: beta")
        err = rpc_error(stubs.predict.Predict, predict_request(version=3), timeout=10)
        assert err.details() == "Servable not found for request: Specific(m, 3)"
        # HandleReloadConfigRequest: move "stable" to 2 and drop version 1.
        from google.protobuf import text_format
        from tensorflow_serving.apis import model_management_pb2
        reload = model_management_pb2.ReloadConfigRequest()
        text_format.Parse(f"""model_config_list {{ config {{ name: "m" base_path: "{base}"
            model_platform: "tensorflow" model_version_policy {{ specific {{ versions: 2 }} }}
            version_labels {{ key: "stable" value: 2 }} }} }}""", reload.config)
        stubs.model.HandleReloadConfigRequest(reload, timeout=30)
        assert version_of(label="stable") == 2
        assert server.model_status("m")[1][0] == "END"
    finally:
        stubs.close()
        server.stop(grace_s=1)
