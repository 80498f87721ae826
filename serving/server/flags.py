"""`t2i serve`: tensorflow_model_server's flags -> a running ModelServer."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from serving.server.model_server import (DEFAULT_MAX_BATCH_SIZE, DEFAULT_MAX_REQUEST_BYTES,
                                         ModelServer, default_max_concurrent_requests)
from t2i.errors import T2IError

log = logging.getLogger("t2i.serving")


def _bool(text) -> bool:
    value = str(text).strip().lower()
    if value in ("1", "true", "t", "yes", "y"):
        return True
    if value in ("0", "false", "f", "no", "n"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def build_parser(prog: str = "t2i serve") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Serve SavedModels over TF Serving's gRPC and REST APIs (a local stand-in "
                    "for tensorflow_model_server, for development and tests).")
    p.add_argument("--port", type=int, default=8500, help="gRPC port (default 8500; 0 = any free)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1; 0.0.0.0 for all interfaces)")
    p.add_argument("--model_name", default="default", help="model name (default 'default')")
    p.add_argument("--model_base_path", default="",
                   help="directory holding <version>/saved_model.pb subdirectories")
    p.add_argument("--model_config_file", default="",
                   help="text-format tensorflow.serving.ModelServerConfig (overrides --model_name/"
                        "--model_base_path)")
    p.add_argument("--model_config_file_poll_wait_seconds", type=float, default=0,
                   help="re-read --model_config_file this often (0 = never)")
    p.add_argument("--file_system_poll_wait_seconds", type=float, default=1,
                   help="seconds between scans for new versions (default 1; 0 = scan once)")
    p.add_argument("--enable_model_warmup", type=_bool, nargs="?", const=True, default=True,
                   help="replay assets.extra/tf_serving_warmup_requests before serving a version")
    p.add_argument("--num_request_iterations_for_warmup", type=int, default=1)
    p.add_argument("--saved_model_tags", default="serve",
                   help="comma-separated MetaGraphDef tags to load (default serve)")
    p.add_argument("--grpc_max_threads", type=int, default=0,
                   help="gRPC worker threads (default 4 x CPUs, at least 16); RPCs beyond 4 per "
                        "thread get RESOURCE_EXHAUSTED at once")
    p.add_argument("--max_concurrent_requests", type=int, default=default_max_concurrent_requests(),
                   help="Predict calls run at once; others wait up to --queue_timeout_seconds, then "
                        "get RESOURCE_EXHAUSTED / HTTP 429 (default: 4 per CPU, here "
                        f"{default_max_concurrent_requests()}; 0 = no limit)")
    p.add_argument("--queue_timeout_seconds", type=float, default=0.5,
                   help="how long a Predict call waits for a free slot (default 0.5)")
    p.add_argument("--max_request_bytes", type=int, default=DEFAULT_MAX_REQUEST_BYTES,
                   help="largest request accepted: gRPC message or REST body (default 4 MiB; "
                        "gRPC answers RESOURCE_EXHAUSTED above it, REST 413)")
    p.add_argument("--max_batch_size", type=int, default=DEFAULT_MAX_BATCH_SIZE,
                   help="most examples in one Predict request; larger batches get "
                        f"INVALID_ARGUMENT before anything is parsed (default "
                        f"{DEFAULT_MAX_BATCH_SIZE}; 0 = no limit)")
    p.add_argument("--enable_serialization_as_tensor_content", type=_bool, nargs="?", const=True,
                   default=False, help="send outputs as tensor_content instead of typed fields")
    p.add_argument("--grace_period_seconds", type=float, default=5.0,
                   help="on SIGTERM/SIGINT, how long in-flight requests may finish")
    p.add_argument("--rest_api_port", type=int, default=0,
                   help="REST API port (TF Serving's /v1/models/...; default 0 = off)")
    p.add_argument("--rest_api_num_threads", type=int, default=0,
                   help="REST worker threads (default 4 x CPUs)")
    p.add_argument("--rest_api_timeout_in_ms", type=int, default=30000,
                   help="deadline of a REST request (default 30000; 0 = none)")
    p.add_argument("--enable_grpc_healthcheck_service", type=_bool, nargs="?", const=True,
                   default=True, help="accepted for compatibility; grpc.health.v1 is always on")
    p.add_argument("--verbose", action="store_true", help="debug logging")
    return p


def server_from_args(args) -> ModelServer:
    if args.model_config_file and args.model_base_path:
        log.warning("--model_config_file is set: ignoring --model_name/--model_base_path")
    if args.rest_api_port < 0:
        raise T2IError(f"--rest_api_port must be >= 0, got {args.rest_api_port}")
    tags = tuple(t.strip() for t in args.saved_model_tags.split(",") if t.strip())
    if not tags:
        raise T2IError("--saved_model_tags is empty")
    return ModelServer(
        model_name=args.model_name, model_base_path=args.model_base_path or None,
        model_config_file=args.model_config_file or None, port=args.port, host=args.host,
        file_system_poll_wait_seconds=args.file_system_poll_wait_seconds,
        model_config_file_poll_wait_seconds=args.model_config_file_poll_wait_seconds,
        enable_model_warmup=args.enable_model_warmup,
        num_request_iterations_for_warmup=args.num_request_iterations_for_warmup,
        grpc_max_threads=args.grpc_max_threads or None,
        max_concurrent_requests=args.max_concurrent_requests,
        queue_timeout_s=args.queue_timeout_seconds, max_request_bytes=args.max_request_bytes,
        max_batch_size=args.max_batch_size,
        saved_model_tags=tags, tensor_content=args.enable_serialization_as_tensor_content,
        grace_s=args.grace_period_seconds, rest_api_port=args.rest_api_port,
        rest_api_num_threads=args.rest_api_num_threads or None,
        rest_api_timeout_ms=args.rest_api_timeout_in_ms)


def main(argv=None, prog: str = "t2i serve") -> int:
    """`t2i serve` / `python -m serving.server`: serve until SIGTERM or SIGINT, then exit 0."""
    args = build_parser(prog).parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    stop = threading.Event()
    previous = {}

    def on_signal(signum, _frame):
        log.info("Received %s, shutting down", signal.Signals(signum).name)
        stop.set()

    try:
        server = server_from_args(args)
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, on_signal)
        try:
            server.start()
            if args.file_system_poll_wait_seconds <= 0:
                log.info("--file_system_poll_wait_seconds=0: versions were scanned once")
            while not stop.wait(0.5):
                pass
        finally:
            server.stop()
    except T2IError as e:
        print(f"t2i: error: {e}", file=sys.stderr)
        return 2
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
