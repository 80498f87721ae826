"""gRPC client and local model server (not built yet: see the export/serving issue)."""
