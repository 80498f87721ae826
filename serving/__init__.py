"""Serving t2i: clients, a local stand-in for tensorflow_model_server, and the demo page.

serving.server  `t2i serve`: TF Serving's gRPC API (Predict, GetModelMetadata,
                GetModelStatus, health) and, with --rest_api_port, its REST API,
                over SavedModel versions on disk (a package, one module per concern).
serving.client  `t2i client`, predict/score/trace/sample over gRPC and
                rest_predict over REST; works against the real TF Serving too.
serving.states  the version states (START ... END), one table for both.
serving.demo    `t2i demo`: a Gradio page (optional extra: pip install -e '.[demo]').
"""
