"""JSON answers too large for a Lambda response, kept in S3 behind a short-lived URL.

They live under ``fetch/<repo_id>/``, like fetch packs: the bucket expires that prefix after a
day and deleting the repository deletes it.
"""

from __future__ import annotations

from dataclasses import dataclass

from muse_cloud.storage import layout
from muse_cloud.storage.packs import PackStore


@dataclass
class AnswerStore:
    packs: PackStore

    def url(self, repo_id: str, document: bytes) -> str:
        """A download URL for ``document``. It is written again on every call, which restarts
        its day before expiry, so the URL never outlives the object."""
        key = layout.answer(repo_id, document)
        self.packs.put(key, document, "application/json")
        return self.packs.presign_download(key)
