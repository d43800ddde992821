"""Reference cycles among mappings (`ref` columns that, followed from mapping to mapping, come back): each
record would wait for the other to reach Bubble first, so components/mapping_config.py refuses them."""

from __future__ import annotations

__all__ = ["reference_cycles"]


def reference_cycles(
    graph: dict[str, list[tuple[str, str]]], order: list[str]
) -> list[tuple[list[str], str]]:
    """The reference cycles, each once: from each mapping the shortest chain of references back to it, unless
    a mapping earlier in config order is on it; as names (`users -> listings -> users`) with the path of the
    first mapping's reference into the cycle."""
    rank = {name: i for i, name in enumerate(order)}
    found: list[tuple[list[str], str]] = []
    seen_groups: set[frozenset[str]] = set()
    for start in order:
        cycle = _cycle_from(graph, start)
        if cycle is None:
            continue
        names, path = cycle
        group = frozenset(names)
        if group in seen_groups or min(group, key=rank.__getitem__) != start:
            continue
        seen_groups.add(group)
        found.append(([*names, start], path))
    return found


def _cycle_from(graph: dict[str, list[tuple[str, str]]], start: str) -> tuple[list[str], str] | None:
    """The shortest chain of references from `start` back to it (breadth first), and the path of its first
    reference; None when there is none."""
    queue: list[tuple[str, list[str], str]] = [
        (target, [start], path) for path, target in graph.get(start, [])
    ]
    visited: set[str] = set()
    while queue:
        node, chain, first_path = queue.pop(0)
        if node == start:
            return chain, first_path
        if node in visited:
            continue
        visited.add(node)
        queue.extend((target, [*chain, node], first_path) for _, target in graph.get(node, []))
    return None
