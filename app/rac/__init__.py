"""The RAC engine: embedder, label index, judges, prompts, decisions. No web or database code."""
