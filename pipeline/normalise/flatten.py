"""Walk the source fields a normaliser did not map to a column (the leftovers).

Paths are dotted, list elements are ``[]``: ``requestParameters.grantTokens[]``. The walk is
bounded in depth; anything deeper is reported once under the path ``…`` so it is counted as
dropped rather than silently ignored.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

# A tree of source keys a normaliser consumed: True for a whole subtree.
Consumed = dict[str, Any]

TOO_DEEP = "…"


def leftovers(obj: dict[str, Any], consumed: Consumed | None, prefix: str = "", depth: int = 0,
              max_depth: int = 32) -> Iterator[tuple[str, Any]]:
    if depth >= max_depth:
        yield TOO_DEEP, None
        return
    for key, value in obj.items():
        sub = consumed.get(key) if consumed else None
        if sub is True or value is None:
            continue
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from leftovers(value, sub if isinstance(sub, dict) else None, path + ".", depth + 1, max_depth)
        elif isinstance(value, list):
            yield from _list(value, path + "[]", depth + 1, max_depth)
        else:
            yield path, value


def _list(items: list[Any], path: str, depth: int, max_depth: int) -> Iterator[tuple[str, Any]]:
    if depth >= max_depth:
        yield TOO_DEEP, None
        return
    for item in items:
        if isinstance(item, dict):
            yield from leftovers(item, None, path + ".", depth + 1, max_depth)
        elif isinstance(item, list):
            yield from _list(item, path + "[]", depth + 1, max_depth)
        elif item is not None:
            yield path, item


def get(obj: Any, *keys: str) -> Any:
    """``obj[k1][k2]…`` or None when any level is missing or not an object."""
    for k in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(k)
    return obj
