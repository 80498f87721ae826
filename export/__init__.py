"""SavedModel export for TensorFlow Serving (not built yet: see the export/serving issue)."""
