"""The Hugging Face Hub: ``hf://org/name[@revision]`` names a model package there.

:func:`download` fetches a package's files into the Hugging Face cache (huggingface_hub's
``snapshot_download``: ``HF_HUB_CACHE``, ``HF_HUB_OFFLINE``, ``HF_TOKEN`` and the login cache
work as for every library on the Hub) and returns its folder; offline, a package already in the
cache loads from there. :func:`upload` puts a package folder into a model repository in one
commit. The token comes from huggingface_hub's usual places, never from a flag (a flag shows in
``ps``).

``huggingface_hub`` is the optional ``hub`` extra (``pip install 'rrn[hub]'``): without it an
``hf://`` name is a one-line error saying so.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rrn.errors import UserError
from rrn.package.folder import FILES
from rrn.version import __version__

PREFIX = "hf://"
#: A Hub repository id: ``org/name`` (letters, digits, ``-``, ``_``, ``.``; at most 96 each).
REPO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}")
_FORM = "hf://org/name or hf://org/name@revision (a branch, tag or commit)"
_CHARS = "org and name of letters, digits, '-', '_', '.'"
_LOGIN = "set HF_TOKEN or log in once with `hf auth login`"


class HubError(UserError):
    """The Hub, or the way to it, cannot give or take a package; the message says what to do."""


def is_hub_uri(value: Any) -> bool:
    """Whether ``value`` is an ``hf://`` name (any other value is a path)."""
    return isinstance(value, str) and value.startswith(PREFIX)


def check_repo_id(repo_id: str, given: str | None = None) -> str:
    """``repo_id`` when it is ``org/name``.

    Raises:
        HubError: it is not (``given``: what the user wrote, named in the message).
    """
    if not REPO_ID.fullmatch(repo_id) or ".." in repo_id or repo_id.endswith((".git", ".")):
        said = f"{given!r} does not name a Hub model" if given else f"{repo_id!r} is not a Hub id"
        raise HubError(f"{said}; expected {_FORM if given else 'org/name'} ({_CHARS})")
    return repo_id


def parse_hub_uri(uri: str) -> tuple[str, str | None]:
    """``("org/name", revision or None)`` of ``hf://org/name[@revision]``.

    Raises:
        HubError: not of that form.
    """
    if not is_hub_uri(uri):
        raise HubError(f"{uri!r} is not an hf:// name; expected {_FORM}")
    repo_id, at, revision = uri[len(PREFIX) :].partition("@")
    if at and not revision.strip():
        raise HubError(f"{uri!r} names no revision after '@'; expected {_FORM}")
    return check_repo_id(repo_id, given=uri), revision or None


def _hub(what: str):
    """huggingface_hub, or a one-line error naming the extra."""
    try:
        import huggingface_hub
    except ImportError:
        raise HubError(
            f"{what} needs huggingface_hub, which is not installed: pip install 'rrn[hub]'"
        ) from None
    return huggingface_hub


def download(uri: str) -> Path:
    """The folder of the package ``uri`` names, in the Hugging Face cache (downloaded when not
    there, or when the Hub has a newer commit of the branch; offline, the cached one).

    Raises:
        HubError: no huggingface_hub, a malformed name, no such repository or revision (or no
            access to it), or offline without the package in the cache.
    """
    repo_id, revision = parse_hub_uri(uri)
    hf = _hub(uri)
    from huggingface_hub import constants, errors

    try:
        folder = hf.snapshot_download(
            repo_id,
            revision=revision,
            allow_patterns=list(FILES),
            library_name="rrn",
            library_version=__version__,
        )
    except (errors.LocalEntryNotFoundError, errors.OfflineModeIsEnabled):
        offline = " (HF_HUB_OFFLINE is set)" if constants.HF_HUB_OFFLINE else ""
        raise HubError(
            f"{uri} is not in the Hugging Face cache ({constants.HF_HUB_CACHE}) and the Hub "
            f"cannot be reached{offline}: download it once with a network, or pass the package "
            "folder"
        ) from None
    except errors.RevisionNotFoundError:
        raise HubError(f"{uri}: {repo_id} has no revision {revision!r}") from None
    except errors.RepositoryNotFoundError:
        raise HubError(
            f"{uri}: no model repository {repo_id} on the Hub, or it is private or gated and "
            f"this machine has no token with access to it ({_LOGIN})"
        ) from None
    except (errors.HfHubHTTPError, ValueError) as err:
        raise HubError(f"{uri}: {_first_line(err)}") from None
    return Path(folder)


def require_token(what: str) -> None:
    """Fail unless huggingface_hub finds a token (``HF_TOKEN``, the login cache).

    Raises:
        HubError: no huggingface_hub, or no token.
    """
    if _hub(what).get_token() is None:
        raise HubError(
            f"{what} needs a Hugging Face token with write access: {_LOGIN} (rrn takes no "
            "token flag: a flag shows in ps)"
        )


def upload(
    folder: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    message: str,
    files: Sequence[str] = FILES,
) -> Any:
    """Put ``files`` of ``folder`` into the model repository ``repo_id`` in one commit (the
    repository is created when it does not exist: private with ``private``; an existing one
    keeps its visibility).

    Returns:
        huggingface_hub's ``CommitInfo`` (``commit_url``, ``oid``).

    Raises:
        HubError: no huggingface_hub or no token, or the Hub refused.
    """
    check_repo_id(repo_id)
    hf = _hub(f"uploading to {repo_id}")
    require_token(f"uploading to {repo_id}")
    from huggingface_hub import errors

    api = hf.HfApi(library_name="rrn", library_version=__version__)
    operations = [
        hf.CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(Path(folder) / name))
        for name in files
    ]
    try:
        api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        return api.create_commit(repo_id, operations, commit_message=message, repo_type="model")
    except (errors.HfHubHTTPError, errors.OfflineModeIsEnabled, ValueError) as err:
        raise HubError(f"uploading to {repo_id}: {_first_line(err)}") from None


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return (lines[0] if lines else type(err).__name__)[:300]
