"""The exit codes of ``videoclip`` and ``upload.py``, and [`VideoCLIPError`]: a failure the user can fix, which
the entry points print as one line (any other exception is a bug and keeps its traceback).

Standard library only: ``upload.py`` runs this file on its own to build its ``--help`` without torch."""

from __future__ import annotations

import contextlib
import enum
import os
from collections.abc import Iterator


class ExitCode(enum.IntEnum):
    """Exit status of ``videoclip`` and ``upload.py``, each with its `meaning` (``upload.py --help`` lists them)."""

    def __new__(cls, code: int, meaning: str):
        member = int.__new__(cls, code)
        member._value_, member.meaning = code, meaning
        return member

    OK = 0, "success"
    FAILURE = 1, "failure (unreadable model or data, no weights); an unexpected error shows its traceback"
    USAGE = 2, "bad command line, or a missing input path"
    CHECKPOINT_UNREADABLE = 3, "checkpoint missing, unreadable, or not a torchmultimodal VideoCLIP checkpoint"
    KEY_MISMATCH = 4, "checkpoint keys do not match the architecture (see --config)"
    NEEDS_PICKLE = 5, "checkpoint needs pickle to load and --allow-pickle was not given"
    NETWORK = 6, "no network connection (checkpoint download, tokenizer, or the Hub)"
    DOWNLOAD_FAILED = 7, "download failed or did not verify (HTTP error, size or sha256 mismatch)"
    RELOAD_MISMATCH = 8, "the written folder, reloaded in a fresh process, does not reproduce the model"
    AUTH = 9, "Hub authentication failed (no token, or HTTP 401)"
    FORBIDDEN = 10, "the Hub refused the write (HTTP 403: a repo or namespace this token may not write)"
    OUTPUT_DIR = 11, "the output folder is not empty and was not written by this tool (see --overwrite)"
    HUB_ERROR = 12, "other Hub error (after retries)"
    BAD_INPUT = 13, "bad input (tokenizer, --config)"
    INTERRUPTED = 130, "interrupted"


EXIT_CODE_MEANINGS: dict[ExitCode, str] = {code: code.meaning for code in ExitCode}


def exit_codes_help() -> str:
    """The ``exit codes:`` block of ``upload.py --help``: every code, from [`EXIT_CODE_MEANINGS`]."""
    rows = [f"  {int(code):<3} {meaning}" for code, meaning in EXIT_CODE_MEANINGS.items()]
    return "exit codes:\n" + "\n".join(rows)


class VideoCLIPError(Exception):
    """A failure with a one-line, user-facing reason and the exit code it maps to.

    Args:
        message: what went wrong and, where possible, what to do; newlines are folded into one line.
        exit_code: the process exit status. Defaults to the class's `exit_code`, `ExitCode.FAILURE`.
        details: a longer report (full key lists, ...) shown on request (``--verbose``/``--debug``).
    """

    exit_code: ExitCode = ExitCode.FAILURE

    def __init__(self, message: str, exit_code: ExitCode | int | None = None, details: str | None = None):
        super().__init__(message)
        self.message = " ".join(message.split("\n"))
        if exit_code is not None:
            self.exit_code = ExitCode(exit_code)
        self.details = details


class CommandError(VideoCLIPError):
    """A failure of a ``videoclip`` command's inputs (bad option values, missing files)."""


class UploadError(VideoCLIPError):
    """A failure of converting or publishing with ``upload.py``."""


class DownloadError(VideoCLIPError):
    """A file or model that could not be fetched or did not verify (no network, HTTP error, digest mismatch)."""

    exit_code = ExitCode.DOWNLOAD_FAILED


class InputError(VideoCLIPError, ValueError):
    """An input that cannot be used as given: a tokenizer, a config, weights that do not fit the model."""

    exit_code = ExitCode.BAD_INPUT


def first_line(error: BaseException) -> str:
    """The first non-empty line of an exception's message, or its type's name when it has none. An error re-raised
    from a DataLoader worker ("Caught ... in DataLoader worker process N." + the worker's traceback) gives the
    worker's own message, which names the file."""
    if isinstance(error, KeyError) and error.args:
        text = str(error.args[0])
    else:
        text = getattr(error, "message", None) or str(error)
    text = text.strip()
    lines = text.splitlines()
    if len(lines) > 1 and lines[0].startswith("Caught ") and "DataLoader worker" in lines[0]:
        original = lines[-1].strip()  # "module.ErrorType: message", the worker traceback's last line
        return original.split(": ", 1)[1] if ": " in original else original
    return lines[0] if text else type(error).__name__


@contextlib.contextmanager
def writing(path: str | os.PathLike) -> Iterator[None]:
    """Shows a failure to write the output `path` (a read-only folder, a file in the way) as one line."""
    try:
        yield
    except OSError as error:
        reason = error.strerror or first_line(error)
        if error.filename and os.fspath(error.filename) != os.fspath(path):
            reason += f" ({error.filename})"
        raise CommandError(f"cannot write {path}: {reason}") from error
