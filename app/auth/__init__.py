"""Projects and API keys: who may call the API, and which project's data they see."""
