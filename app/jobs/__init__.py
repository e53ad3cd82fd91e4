"""Batch jobs: a dataset or item filter labelled in chunks, resumable, on any number of workers."""
