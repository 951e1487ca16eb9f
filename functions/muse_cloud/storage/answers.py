"""JSON answers too large for a Lambda response, kept in S3 behind a short-lived URL.

They live under ``fetch/<repo_id>/``, like fetch packs: the bucket expires that prefix after a
day and deleting the repository deletes it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from muse_cloud import aws
from muse_cloud.storage.packs import PackStore


def answer_key(repo_id: str, document: bytes) -> str:
    return f"fetch/{repo_id}/answers/{hashlib.sha256(document).hexdigest()}.json"


@dataclass
class AnswerStore:
    packs: PackStore = field(default_factory=PackStore)

    def url(self, repo_id: str, document: bytes) -> str:
        """A download URL for ``document``. It is written again on every call, which restarts
        its day before expiry, so the URL never outlives the object."""
        key = answer_key(repo_id, document)
        aws.s3().put_object(
            Bucket=self.packs.bucket, Key=key, Body=document, ContentType="application/json"
        )
        return self.packs.presign_download(key)
