"""The `rac` command group and its one error boundary: an `AppError` raised by any command (bad
input, a missing project or schema) is printed as `error: <detail>` with exit status 2, the status
click gives a usage error, instead of a traceback."""

from __future__ import annotations

from typing import IO, Any

import click

from app.errors import AppError
from app.rac.chunked_models import ModelFileError


class CommandFailed(click.ClickException):
    """A command could not do what it was asked; printed as `error: <message>`, exit status 2."""

    exit_code = 2

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True, file=file)


class RacGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AppError as exc:
            raise CommandFailed(exc.detail) from None
        except ModelFileError as exc:  # a model named in the settings is not usable
            raise CommandFailed(str(exc)) from None
