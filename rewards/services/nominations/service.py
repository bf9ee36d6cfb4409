"""`NominationService`, assembled from its parts over `NominationBase`: reading, opening and
nominating, voting, closing and cancelling, and the phase changes of `advance`."""

from __future__ import annotations

from typing import Any

from rewards.services.nominations.nominating import NominatingMixin
from rewards.services.nominations.phases import PhasesMixin
from rewards.services.nominations.voting import VotingMixin


class NominationService(PhasesMixin, VotingMixin, NominatingMixin):
    """A Nomination Badge's campaigns: open, nominate, vote, close or cancel, and `advance`."""

    async def record_message(self, campaign_id: int, message: dict[str, Any]) -> None:
        """Remember a posted card ({platform, chat_id, message_id, tenant, kind}) to update it."""
        async with self.db.write() as session:
            row = await self._campaign(session, campaign_id, lock="update")
            row.messages = [*list(row.messages or ()), dict(message)]
            session.add(row)
