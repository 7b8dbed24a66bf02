"""Token authentication with a Ray cluster, the token taken from where Ray keeps it
(`$RAY_AUTH_TOKEN`, the file `$RAY_AUTH_TOKEN_PATH`, `~/.ray/auth_token`), with no
RAY_AUTH_MODE to set.

Ray (2.60) turns token authentication on for a head started where `~/.ray/auth_token` exists
(and for a bare `ray.init()`), but a client given an address sends its token only when
`RAY_AUTH_MODE=token` is set: without it the Jobs API answers "Missing authentication token"
and `ray.init` retries for 20 s before "Failed to connect". The service commands send the
token's header (`http_headers`); a controller joining a cluster turns token mode on when the
cluster wants it (`join_mode`). Without a token, a cluster that wants one is a single line
saying how to give it (`missing_token`).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

from orchestrator.errors import UserError

MODE_ENV = "RAY_AUTH_MODE"


def http_headers() -> dict[str, str]:
    """The `authorization` header carrying the token where Ray keeps one ({} when there is
    none, or RAY_AUTH_MODE=disabled says to send none). A cluster without token
    authentication ignores it."""
    if os.environ.get(MODE_ENV, "").strip().lower() == "disabled":
        return {}
    try:
        from ray._raylet import AuthenticationTokenLoader
    except ImportError:  # a Ray without token authentication
        return {}
    loader = AuthenticationTokenLoader.instance()
    return dict(loader.get_token_for_http_header(ignore_auth_mode=True) or {})


def join_mode(address: str) -> None:
    """Before `ray.init(address=...)`: turn Ray's token mode on in this process (and those it
    starts) when the cluster wants a token and RAY_AUTH_MODE is unset, taking it from where
    Ray keeps it; fail in a second with one line when there is none or the cluster refuses
    it. Only then: a driver in token mode also demands the token from a cluster's workers,
    and one without token authentication sends none. `address` is the GCS's host:port."""
    if "://" in address or ":" not in address or _gcs_accepts(address):
        return
    if os.environ.get(MODE_ENV) is None and _enable_token_mode():
        if _gcs_accepts(address):
            return
        raise rejected_token(address)
    raise rejected_token(address) if _token_mode() else missing_token(address)


def missing_token(address: str) -> UserError:
    return UserError(
        f"{address}: the Ray cluster requires an authentication token: put it in "
        "~/.ray/auth_token (or set RAY_AUTH_TOKEN, or RAY_AUTH_TOKEN_PATH to its file); "
        "`ray get-auth-token` on the head node prints it"
    )


def rejected_token(address: str) -> UserError:
    return UserError(
        f"{address}: the Ray cluster rejected the authentication token from {token_source()}; "
        "`ray get-auth-token` on the head node prints the right one"
    )


def token_source() -> str:
    """Where Ray reads the token from, in its order."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return "$RAY_AUTH_TOKEN"
    if os.environ.get("RAY_AUTH_TOKEN_PATH"):
        return os.environ["RAY_AUTH_TOKEN_PATH"]
    return "~/.ray/auth_token"


def http_failure(address: str, error: Exception) -> UserError | None:
    """The Jobs API's 401 (no token sent) or 403 (a wrong one) as one line; else None."""
    text = str(error)
    if "Missing authentication token" in text or "Authentication required" in text:
        return missing_token(address)
    if "Invalid authentication token" in text or "Authentication failed" in text:
        return rejected_token(address)
    return None


def _gcs_accepts(address: str) -> bool:
    """Whether the GCS at `address` takes this process's requests (False: it wants a token
    we do not send, or refuses ours); any other problem is left to `ray.init` to say."""
    try:
        from ray._raylet import GcsClient
        from ray.exceptions import AuthenticationError
    except ImportError:
        return True
    try:
        with _quiet_stderr():  # Ray's C++ client warns there before it raises
            GcsClient(address=address).internal_kv_get(b"orchestrate-probe", None, timeout=10)
    except AuthenticationError:
        return False
    except Exception:
        return True
    return True


def _enable_token_mode() -> bool:
    """Ray's own switch (what `ray start` does when a token exists): token mode on when a
    token is found. Returns whether it is on."""
    try:
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available,
        )
    except ImportError:  # a Ray without token authentication
        return False
    ray_auth = logging.getLogger("ray._private.authentication")
    level = ray_auth.level
    ray_auth.setLevel(logging.ERROR)  # "enabled for this Ray cluster": not the client's news
    try:
        return maybe_enable_token_auth_if_token_available(warn_if_disabled=False)
    finally:
        ray_auth.setLevel(level)


def _token_mode() -> bool:
    return os.environ.get(MODE_ENV, "").strip().lower() == "token"


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
