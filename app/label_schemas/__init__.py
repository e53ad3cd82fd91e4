"""Label schemas: upload, validation, immutable versions."""
