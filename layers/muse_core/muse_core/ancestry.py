"""Ancestry over a commit graph seen through a batched lookup, pruned by generation numbers."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

# commit id -> (parent ids, generation); ids the lookup does not know are left out.
GraphLookup = Callable[[Collection[str]], Mapping[str, tuple[tuple[str, ...], int]]]


def generation_numbers(
    commits: Mapping[str, tuple[str, ...]], lookup: GraphLookup
) -> dict[str, int]:
    """Generations of ``commits`` (id -> parents, parents listed first), given the held graph."""
    outside = {p for parents in commits.values() for p in parents if p not in commits}
    known = {cid: gen for cid, (_, gen) in lookup(outside).items()} if outside else {}
    generations: dict[str, int] = {}
    for cid, parents in commits.items():
        generations[cid] = 1 + max(
            (generations.get(p, known.get(p, 0)) for p in parents), default=0
        )
    return generations


def is_ancestor(ancestor: str, descendant: str, lookup: GraphLookup) -> bool:
    """True when ``ancestor`` is ``descendant`` or reachable from it through parents."""
    if ancestor == descendant:
        return True
    start = lookup([ancestor, descendant])
    if ancestor not in start or descendant not in start:
        return False
    floor = start[ancestor][1]
    seen = {descendant}
    frontier = {descendant: start[descendant]}
    while frontier:
        parents = {p for info in frontier.values() for p in info[0] if p not in seen}
        if ancestor in parents:
            return True
        seen |= parents
        # A commit no newer than the ancestor cannot have it as an ancestor (unless it is it).
        frontier = {cid: info for cid, info in lookup(parents).items() if info[1] > floor}
    return False
