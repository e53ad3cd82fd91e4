"""Datasets: files of items (CSV, JSONL, Parquet) uploaded in one request, streamed."""
