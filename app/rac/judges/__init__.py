"""Judge backends: llama.cpp in-process (embedded default) and OpenAI-compatible HTTP (vLLM)."""
