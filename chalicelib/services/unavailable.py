"""Operations the console API names but Lifeboat cannot do yet: they answer 501 with a clear message.

Nothing here pretends to work; each function says what is missing and where it will come from.
"""

from __future__ import annotations


class FeatureUnavailable(NotImplementedError):
    """The operation exists in the API but not (yet) in Lifeboat."""

    def __init__(self, feature: str, message: str) -> None:
        self.feature = feature
        super().__init__(message)
