"""The one error base class, and the exit codes of ``videoclip`` and ``upload.py``.

A [`VideoCLIPError`] is a failure the user can fix (a bad option, a missing file, no network): the command-line
entry points print it as one line and exit with its [`ExitCode`]. Any other exception is a bug and keeps its
traceback.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Exit status of ``videoclip`` and ``upload.py``; ``upload.py --help`` lists these."""

    OK = 0
    FAILURE = 1
    USAGE = 2
    CHECKPOINT_UNREADABLE = 3
    KEY_MISMATCH = 4
    NEEDS_PICKLE = 5
    NETWORK = 6
    DOWNLOAD_FAILED = 7
    RELOAD_MISMATCH = 8
    AUTH = 9
    FORBIDDEN = 10
    OUTPUT_DIR = 11
    HUB_ERROR = 12
    BAD_INPUT = 13
    INTERRUPTED = 130


EXIT_CODE_MEANINGS: dict[ExitCode, str] = {
    ExitCode.OK: "success",
    ExitCode.FAILURE: "failure (unreadable model or data, no weights); an unexpected error shows its traceback",
    ExitCode.USAGE: "bad command line, or a missing input path",
    ExitCode.CHECKPOINT_UNREADABLE: "checkpoint missing, unreadable, or not a torchmultimodal VideoCLIP checkpoint",
    ExitCode.KEY_MISMATCH: "checkpoint keys do not match the architecture (see --config)",
    ExitCode.NEEDS_PICKLE: "checkpoint needs pickle to load and --allow-pickle was not given",
    ExitCode.NETWORK: "no network connection (checkpoint download, tokenizer, or the Hub)",
    ExitCode.DOWNLOAD_FAILED: "download failed or did not verify (HTTP error, size or sha256 mismatch)",
    ExitCode.RELOAD_MISMATCH: "the written folder, reloaded in a fresh process, does not reproduce the model",
    ExitCode.AUTH: "Hub authentication failed (no token, or HTTP 401)",
    ExitCode.FORBIDDEN: "the Hub refused the write (HTTP 403: a repo or namespace this token may not write)",
    ExitCode.OUTPUT_DIR: "the output folder is not empty and was not written by this tool (see --overwrite)",
    ExitCode.HUB_ERROR: "other Hub error (after retries)",
    ExitCode.BAD_INPUT: "bad input (tokenizer, --config)",
    ExitCode.INTERRUPTED: "interrupted",
}


def exit_codes_help(codes: list[ExitCode] | None = None) -> str:
    """The ``exit codes:`` block of a ``--help`` text, from [`EXIT_CODE_MEANINGS`].

    Args:
        codes: which codes to list. Defaults to all of them.
    """
    rows = [f"  {int(code):<3} {EXIT_CODE_MEANINGS[code]}" for code in (codes or list(ExitCode))]
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
    """The first non-empty line of an exception's message, or its type's name when it has none."""
    if isinstance(error, KeyError) and error.args:
        text = str(error.args[0])
    else:
        text = getattr(error, "message", None) or str(error)
    text = text.strip()
    return text.splitlines()[0] if text else type(error).__name__
