"""Labelling: running the engine on items and storing decisions as annotations."""
