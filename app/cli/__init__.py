"""The `rac` command: running the service, administering projects, labelling and evaluating
local files. One module per group of commands; errors are reported once, by the group."""

from __future__ import annotations

import click

from app.cli.admin import keys, schemas
from app.cli.evaluate import eval_command
from app.cli.group import RacGroup
from app.cli.judge import judge
from app.cli.label import label_command
from app.cli.models import models
from app.cli.server import db, serve, worker


@click.group(cls=RacGroup)
def main() -> None:
    """RAC Labeller: label text with open-source LLMs (Retrieval Augmented Classification)."""


for command in (serve, worker, db, keys, schemas, eval_command, label_command, judge,
                models):
    main.add_command(command)
