"""User-facing errors: one line, naming the file, the key and the fix; exit status 2."""

from __future__ import annotations


class HarnessError(Exception):
    """An error caused by the user's input. The CLI prints it as one line and exits 2."""

    exit_code = 2

    def __init__(self, where: str, key: str | None, problem: str, fix: str) -> None:
        self.where, self.key, self.problem, self.fix = where, key, problem, fix
        super().__init__(self.line())

    def line(self) -> str:
        key = f" key '{self.key}':" if self.key else ""
        return f"error: {self.where}:{key} {self.problem}. Fix: {self.fix}"
