"""User-facing errors: the CLI prints their lines and exits with code 2, no traceback."""


class UserError(Exception):
    """A mistake in the user's input. Each line names the file, line and key where known."""

    def __init__(self, lines: list[str] | str):
        self.lines = [lines] if isinstance(lines, str) else list(lines)
        super().__init__("\n".join(self.lines))
