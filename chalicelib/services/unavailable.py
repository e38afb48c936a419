"""Operations this copy of Lifeboat cannot run: they answer 501 with a message that says why.

Each region deploys only the state machines it activates (docs/deploy.md): asking the primary region's copy
for a failover, for example, names the region that can run it instead of failing anonymously.
"""

from __future__ import annotations


class FeatureUnavailable(RuntimeError):
    """The operation exists in the API but its state machine is not deployed in this region."""

    def __init__(self, feature: str, message: str) -> None:
        self.feature = feature
        super().__init__(message)
