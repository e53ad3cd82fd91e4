"""Label Studio ML backend: serve pre-annotations to a Label Studio project and learn from the
annotations its people make (they arrive by webhook and become reviews)."""
