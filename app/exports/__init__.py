"""Exports: a schema's labels streamed as JSONL, CSV or Label Studio tasks."""
