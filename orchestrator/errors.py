"""User-facing errors: the CLI prints their lines and exits with code 2, no traceback; and
notices, which it prints as one line each."""

import warnings


class UserError(Exception):
    """A mistake in the user's input. Each line names the file, line and key where known."""

    def __init__(self, lines: list[str] | str):
        self.lines = [lines] if isinstance(lines, str) else list(lines)
        super().__init__("\n".join(self.lines))


class UserNotice(UserWarning):
    """Something the user must know that is no error (a torn journal record set aside): the
    CLI prints it as one `warning:` line; a Python caller gets it as a warning."""


_python_format = warnings.formatwarning


def format_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    line: str | None = None,
) -> str:
    """`warnings.formatwarning` (the CLI installs it): a UserNotice as one `warning: ...`
    line, not Python's two with file and source; any other warning as Python writes it."""
    if issubclass(category, UserNotice):
        return f"warning: {message}\n"
    return _python_format(message, category, filename, lineno, line)
