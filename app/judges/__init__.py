"""Trained judges: the bundled judge fine-tuned on a schema's labels, versioned per schema."""
