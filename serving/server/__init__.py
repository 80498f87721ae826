"""A local stand-in for `tensorflow_model_server` (gRPC and REST), for development and tests.

It follows TF Serving's contract (docs/serving.md) so that a
client written against it works unchanged against the real server:

- layout `<base_path>/<int version>/saved_model.pb`, version policies
  latest{num_versions}/all/specific and version labels (`--model_config_file`);
- a file-system poller that loads new versions, replays
  `assets.extra/tf_serving_warmup_requests` before a version is AVAILABLE,
  switches "latest" atomically and only then unloads versions that left the
  policy (in-flight requests keep the version they started on);
- PredictionService.Predict / GetModelMetadata, ModelService.GetModelStatus /
  HandleReloadConfigRequest and grpc.health.v1, with TF Serving's status codes
  and messages (truncated to 1024 characters + "...TRUNCATED");
- outputs serialised like TF Serving (typed value fields, `Tensor::AsProtoField`)
  unless --enable_serialization_as_tensor_content;
- with --rest_api_port, TF Serving's REST API: `POST /v1/models/NAME[/versions/V
  |/labels/L]:predict` (row `instances` or columnar `inputs`), `GET
  /v1/models/NAME[...]` (status) and `.../metadata`, with its JSON shapes,
  `{"error": ...}` bodies and HTTP codes.

Beyond TF Serving it validates input ranks, equal batch sizes and non-empty
batches before running a signature, and bounds the work one request causes
(docs/serving.md §6): examples per request (--max_batch_size, checked from the
declared shape before anything is parsed), values sent against the shape
declared, the client's deadline between slices of a batch, Predict calls at
once (--max_concurrent_requests, on by default) and request size
(--max_request_bytes, 4 MiB) on both ports. It binds 127.0.0.1 unless --host
says otherwise, and retries a failed version when its directory changes. Not implemented: Classify/Regress/
MultiInference, batching, monitoring.

Modules, one concern each:

    status          ServingError, TF Serving's messages, gRPC and HTTP codes
    tensors         TensorProto <-> NumPy, the TensorFlow import
    servable        one loaded version and Predict on it
    versions        the model table, the file-system poller, warmup
    model_server    ModelServer: the API shared by gRPC and REST, lifecycle
    grpc_services   PredictionService, ModelService, health
    rest            the REST API (werkzeug routing, waitress server)
    flags           the command line (tensorflow_model_server's flags)

    python -m serving.server --port 8500 --rest_api_port 8501 --model_name t2i --model_base_path models/t2i
    t2i serve --model_config_file models.config
"""

from serving.server.flags import build_parser, main, server_from_args
from serving.server.grpc_services import HEALTH_SERVICES, INT32_MAX
from serving.server.model_server import (DEFAULT_BATCH_SLICE_SIZE, DEFAULT_MAX_BATCH_SIZE,
                                         DEFAULT_MAX_REQUEST_BYTES, ModelServer,
                                         default_max_concurrent_requests)
from serving.server.servable import DEFAULT_SIGNATURE, Servable
from serving.server.status import (ERROR_MESSAGE_LIMIT, ServingError, clean_tf_message, grpc_code,
                                   http_status, truncate_message)
from serving.server.tensors import _as_proto_field, parse_tensor_proto
from serving.server.versions import MAX_WARMUP_RECORDS, WARMUP_FILE, VersionManager
from serving.states import AVAILABLE, END, LOADING, START, STATE_NAMES, UNLOADING

__all__ = [
    "AVAILABLE", "DEFAULT_BATCH_SLICE_SIZE", "DEFAULT_MAX_BATCH_SIZE", "DEFAULT_MAX_REQUEST_BYTES",
    "DEFAULT_SIGNATURE", "END", "ERROR_MESSAGE_LIMIT", "HEALTH_SERVICES", "INT32_MAX",
    "LOADING", "MAX_WARMUP_RECORDS", "ModelServer", "START", "STATE_NAMES", "Servable",
    "ServingError", "UNLOADING", "VersionManager", "WARMUP_FILE", "_as_proto_field", "build_parser",
    "clean_tf_message", "default_max_concurrent_requests", "grpc_code", "http_status", "main", "parse_tensor_proto",
    "server_from_args", "truncate_message",
]
