"""The CLI's consoles, built on first use: importing rich costs more than a bare Python start, and
`lifeboat --help` or a usage error should not pay for it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from rich.console import Console


class _LazyConsole:
    """Becomes a rich Console the first time it is used: from then on it *is* one (its class and state are
    the Console's), so rich's own checks and protocols (Live's `with console`) see a Console."""

    def __init__(self, **options: Any) -> None:
        self._options = options

    def _become(self) -> Any:
        from rich.console import Console

        real = Console(**self.__dict__.pop("_options"))
        self.__class__ = Console  # type: ignore[assignment]
        self.__dict__.update(real.__dict__)
        return self

    def __getattr__(self, name: str) -> Any:
        if name == "_options":  # half-built (a failed _become): never recurse
            raise AttributeError(name)
        return getattr(self._become(), name)

    def __enter__(self) -> Any:
        return self._become().__enter__()

    def __exit__(self, *exc: Any) -> Any:  # looked up before __enter__ made this a Console
        if isinstance(self, _LazyConsole):
            self._become()
        return type(self).__exit__(self, *exc)


def lazy_console(**options: Any) -> Console:
    return cast("Console", _LazyConsole(**options))
