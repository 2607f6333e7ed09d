"""Walk the source fields a normaliser did not map to a column (the leftovers).

Paths are dotted, list elements are ``[]``: ``requestParameters.grantTokens[]``. The walk is
bounded in depth; anything deeper is reported once under the path ``…`` so it is counted as
dropped rather than silently ignored.
"""

from __future__ import annotations

from typing import Any

# A tree of source keys a normaliser consumed: True for a whole subtree.
Consumed = dict[str, Any]

TOO_DEEP = "…"


def leftovers(obj: dict[str, Any], consumed: Consumed | None, prefix: str = "", depth: int = 0,
              max_depth: int = 32) -> list[tuple[str, Any]]:
    """Every (path, scalar) below ``obj`` that ``consumed`` does not cover. Values of one list
    path come in document order; different paths in no particular order."""
    out: list[tuple[str, Any]] = []
    _walk_object(obj, consumed, prefix, depth, max_depth, out)
    return out


# A consumed tree compiled once: the keys consumed whole, and the partly consumed subtrees.
_Compiled = tuple[frozenset[str], dict[str, Any]]
_COMPILED: dict[int, tuple[Consumed, _Compiled]] = {}


def _compiled(consumed: Consumed) -> _Compiled:
    hit = _COMPILED.get(id(consumed))
    if hit is not None and hit[0] is consumed:
        return hit[1]
    whole = frozenset(k for k, v in consumed.items() if v is True)
    partial = {k: v for k, v in consumed.items() if isinstance(v, dict)}
    if len(_COMPILED) < 1024:  # normalisers' module constants; anything else is not kept
        _COMPILED[id(consumed)] = (consumed, (whole, partial))
    return whole, partial


# Plain recursion appending to one list (a generator chain cost ~9% of a batch run); the keys a
# normaliser consumed whole are removed with one set difference instead of a lookup per key.
def _walk_object(obj: dict[str, Any], consumed: Consumed | None, prefix: str, depth: int, max_depth: int,
                 out: list[tuple[str, Any]]) -> None:
    if depth >= max_depth:
        out.append((TOO_DEEP, None))
        return
    if consumed:
        whole, partial = _compiled(consumed)
        keys: Any = obj.keys() - whole
    else:
        keys, partial = obj, {}
    for key in keys:
        value = obj[key]
        if value is None:
            continue
        if isinstance(value, dict):
            _walk_object(value, partial.get(key), f"{prefix}{key}.", depth + 1, max_depth, out)
        elif isinstance(value, list):
            _walk_list(value, f"{prefix}{key}[]", depth + 1, max_depth, out)
        else:
            out.append((f"{prefix}{key}", value))


def _walk_list(items: list[Any], path: str, depth: int, max_depth: int, out: list[tuple[str, Any]]) -> None:
    if depth >= max_depth:
        out.append((TOO_DEEP, None))
        return
    for item in items:
        if isinstance(item, dict):
            _walk_object(item, None, path + ".", depth + 1, max_depth, out)
        elif isinstance(item, list):
            _walk_list(item, path + "[]", depth + 1, max_depth, out)
        elif item is not None:
            out.append((path, item))


def get(obj: Any, *keys: str) -> Any:
    """``obj[k1][k2]…`` or None when any level is missing or not an object."""
    for k in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(k)
    return obj
