"""Why an app cannot start, told as file, line and reason."""

from __future__ import annotations

import traceback
from pathlib import Path


class AppLoadError(Exception):
    """The app cannot start: the message names the file, the line and the reason."""


def describe_exception(err: BaseException, app_dir: Path) -> str:
    """File, line and reason of an import failure, pointing into the app rather than into us."""
    if isinstance(err, SyntaxError):
        return f"{err.filename}:{err.lineno}: {type(err).__name__}: {err.msg}"
    frames = traceback.extract_tb(err.__traceback__)
    in_app = [f for f in frames if Path(f.filename).resolve().is_relative_to(app_dir)]
    where = (in_app or frames or [None])[-1]
    location = f"{where.filename}:{where.lineno}: " if where else ""
    return f"{location}{type(err).__name__}: {err}"
