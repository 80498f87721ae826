"""SavedModel export for TensorFlow Serving (`export_savedmodel.export_model`)."""
