"""A repository's protected-branch rules: one item, replaced whole, with a version that every ref
change checks in its own transaction (``unchanged``), so no change goes through under rules
that were replaced after it was judged."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from muse_cloud.domain.protection import UNSET, BranchRule, Protection
from muse_cloud.storage import keys
from muse_cloud.storage.backend import (
    NEW_ITEM,
    Check,
    Condition,
    ConditionFailed,
    Equals,
    Item,
    Table,
)


@dataclass
class ProtectionStore:
    table: Table

    def get(self, repo_id: str) -> Protection:
        return protection_of(self.table.get(keys.protection(repo_id)))

    def replace(
        self, repo_id: str, rules: tuple[BranchRule, ...], replacing: Protection
    ) -> Protection | None:
        """The new rules, only while ``replacing`` is still the current version (None
        otherwise)."""
        replaced = Protection(rules, replacing.version + 1)
        item = {
            **keys.protection(repo_id),
            "rules": [_rule_item(r) for r in rules],
            "version": replaced.version,
        }
        try:
            self.table.put(item, _is(replacing))
        except ConditionFailed:
            return None
        return replaced

    def unchanged(self, repo_id: str, judged: Protection) -> Check:
        """The transaction action that holds only while ``judged`` is still the current rules."""
        return Check(keys.protection(repo_id), _is(judged))


def protection_of(item: Item | None) -> Protection:
    """The rules a PROTECTION item holds; the default rule when there is none."""
    if item is None:
        return UNSET
    rules = tuple(_rule(r) for r in item["rules"])
    return Protection(rules, int(item["version"]))


def _is(protection: Protection) -> Condition:
    return NEW_ITEM if protection.version == 0 else Equals("version", protection.version)


def _rule_item(rule: BranchRule) -> dict[str, Any]:
    return {
        "pattern": rule.pattern,
        "force_push": rule.force_push,
        "deletion": rule.deletion,
        "push": rule.push,
    }


def _rule(item: dict[str, Any]) -> BranchRule:
    return BranchRule(item["pattern"], item["force_push"], item["deletion"], item["push"])
