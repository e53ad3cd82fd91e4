"""Items: the texts a project labels. Posted in bulk, idempotent on the client's id."""
