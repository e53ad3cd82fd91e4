"""The `rac` command: running the service, administering projects, labelling and evaluating
local files, and using a running server as a client. One module per group of commands; errors
are reported once, by the group."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import click

from app.cli.admin import keys, schemas
from app.cli.evaluate import eval_command
from app.cli.group import RacGroup
from app.cli.judge import judge
from app.cli.label import label_command
from app.cli.models import models
from app.cli.remote import datasets, export_command, jobs, schemas_list
from app.cli.server import db, serve, worker


def _version() -> str:
    try:
        return version("rac-labeller")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


@click.group(cls=RacGroup)
@click.version_option(_version(), "--version", prog_name="rac", message="%(prog)s %(version)s")
def main() -> None:
    """RAC Labeller: label text with open-source LLMs (Retrieval Augmented Classification).

    Server commands (serve, worker, db, keys, schemas push/calibrate/cutoff, judge, models)
    work on the server's database and data dir (RAC_DATABASE_URL, RAC_DATA_DIR). Client
    commands (datasets, jobs, export, schemas list) use a running server: RAC_URL and
    RAC_API_KEY (or --url, --api-key).
    `label` and `eval` work on local files with no server.
    """


schemas.add_command(schemas_list)
for command in (serve, worker, db, keys, schemas, datasets, jobs, export_command, eval_command,
                label_command, judge, models):
    main.add_command(command)
