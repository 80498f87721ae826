"""serving/server/flags.py: the command line (tensorflow_model_server's flags, bounded defaults)."""

import os
import socket

import pytest

from serving import model_config as mc
from serving import server as srv
from t2i.errors import T2IError


def test_admission_control_and_request_size_are_bounded_by_default(tiny, tmp_path):
    args = srv.build_parser().parse_args(["--model_base_path", str(tmp_path)])
    assert args.max_concurrent_requests == srv.default_max_concurrent_requests() == 4 * os.cpu_count()
    assert args.max_batch_size == srv.DEFAULT_MAX_BATCH_SIZE
    assert args.max_request_bytes == srv.DEFAULT_MAX_REQUEST_BYTES == 4 * 1024 * 1024
    server = srv.server_from_args(args)
    assert server.max_concurrent_requests == srv.default_max_concurrent_requests()
    assert server.grpc_max_threads >= 16
    with pytest.raises(T2IError, match="--max_batch_size must be >= 0"):
        srv.ModelServer(models=[mc.ModelConfig("m", str(tmp_path))], max_batch_size=-1)


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert srv.main(["--port", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("t2i: error: no model to serve")
    assert srv.main(["--port", "0", "--model_config_file", str(tmp_path / "none.config")]) == 2
    assert "cannot read --model_config_file" in capsys.readouterr().err
    with socket.socket() as busy:  # fails before loading anything
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert srv.main(["--port", str(port), "--model_base_path", str(tmp_path)]) == 2
    assert f"t2i: error: cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
    assert srv.build_parser().parse_args(["--enable_model_warmup=false"]).enable_model_warmup is False
