"""A database store (`storage: postgresql://...`, `mysql://...`, `sqlite:///...`): Optuna's RDB
storage, opened so that several controllers may start at once and a wrong URL is one line.

Optuna makes its tables on the first open of an empty database. Two controllers doing that
at the same moment (the ordinary start of a shared study) collide in PostgreSQL's catalog
(`duplicate key value violates unique constraint "pg_type_typname_nsp_index"`, measured: 3
of 3 tries with 3 at once); the loser's open is simply tried again, when the tables exist.

A password stays out of every file: `${envvar:NAME}` in the URL is NAME's value where the
store is opened, and the sweep file records the URL as written (or leave the password to
the driver: PGPASSWORD, ~/.pgpass).
"""

from __future__ import annotations

import os
import random
import time

import optuna
from optuna.storages import BaseStorage

from orchestrator.errors import UserError
from orchestrator.tracking.redact import EnvvarNotSet, expand_envvars

ATTEMPTS = 5


def open_database(url: str) -> BaseStorage:
    """Optuna's storage for `url`; a server that cannot be reached or a URL it refuses is a
    `UserError` naming the URL (its password left out)."""
    from sqlalchemy import exc

    url = expanded(url)
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return optuna.storages.get_storage(url)
        except exc.IntegrityError:  # another controller is making the tables right now
            if attempt == ATTEMPTS:
                raise
            time.sleep(0.2 * attempt * (1 + random.random()))
        except (exc.OperationalError, exc.ArgumentError, ImportError, ValueError) as error:
            reason = str(getattr(error, "orig", None) or error).strip().splitlines()
            raise UserError(
                f"storage: {shown(url)}: cannot open the sweep's store "
                f"({reason[0] if reason else type(error).__name__})"
            ) from None
    raise AssertionError("unreachable")


def expanded(url: str) -> str:
    """`url` with each `${envvar:NAME}` replaced by NAME's value; an unset one is a
    `UserError` naming it."""
    try:
        return expand_envvars(url, os.environ)[0]
    except EnvvarNotSet as unset:
        name = unset.name
        raise UserError(f"storage: {url}: {name} is not set (in `${{envvar:{name}}}`)") from None


def shown(url: str) -> str:
    """The URL as said to the user: without its password."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy reads: said as given, there is no password to hide
        return url
