"""Serving t2i: a gRPC client and a local stand-in for tensorflow_model_server.

serving.server  `t2i serve`: TF Serving's gRPC API (Predict, GetModelMetadata,
                GetModelStatus, health) over SavedModel versions on disk.
serving.client  `t2i client` and predict/score/trace helpers; works against
                the real TF Serving too.
"""
