"""The review page: a server-rendered, keyboard-first page for people working the review queue,
and a schema dashboard. It calls the same review services as the JSON API."""
