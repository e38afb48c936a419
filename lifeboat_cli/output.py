"""The CLI's consoles, built on first use: importing rich costs more than a bare Python start, and
`lifeboat --help` or a usage error should not pay for it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from rich.console import Console


class _LazyConsole:
    """A rich Console made when something is first printed (or asked of it)."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return getattr(self._console, name)


def lazy_console(**options: Any) -> Console:
    return cast("Console", _LazyConsole(**options))
