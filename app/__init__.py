"""RAC Labeller: self-hosted text labelling with open-source LLMs."""

__version__ = "0.1.0"
