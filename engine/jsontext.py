"""JSON values as hashes cover them and as instances hold them: the canonical text of a value
and a deep copy of one."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["ATOMS", "atom", "canonical_json", "copy_json", "json_text"]

_CANONICAL = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"))
ATOMS = frozenset({str, int, float, bool, type(None)})


def _not_json(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _canonical_chunks() -> Any:
    """The C encoder ``_CANONICAL`` would build on every call, built once: the same text, without
    the set-up (a step encodes a dozen small values). It keeps no marks of the containers it is
    in, so a value that holds itself ends in RecursionError rather than ValueError; JSON-shaped
    data cannot hold itself. None where the C encoder is missing or takes other arguments."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return None
    try:
        # markers, default, encoder, indent, separators, sort_keys, skipkeys, allow_nan
        chunks = make(None, _not_json, json.encoder.encode_basestring, None, ":", ",", True, 0, 1)
        probe = {"b": [1.5, None, "é"], "a": True}
        ok = "".join(chunks(probe, 0)) == _CANONICAL.encode(probe)
    except TypeError:
        return None
    return chunks if ok else None


_CHUNKS = _canonical_chunks()


def canonical_json(value: Any) -> str:
    """The one text of a JSON value that hashes cover: keys sorted, no spaces, Unicode as is."""
    if _CHUNKS is None:
        return _CANONICAL.encode(value)
    return "".join(_CHUNKS(value, 0))


json_text = json.encoder.encode_basestring  # a string as the canonical form spells it


def atom(value: Any) -> str:
    """The canonical JSON of one value, a string, an integer or null without the encoder."""
    kind = type(value)
    if kind is str:
        return json_text(value)
    if kind is int:
        return int.__repr__(value)
    if value is None:
        return "null"
    return canonical_json(value)


def copy_json(value: Any) -> Any:
    """A deep copy of JSON-shaped data (dicts, lists, scalars).

    An instance's data is mostly scalars and empty lists: a dict is copied whole, then only its
    containers again; a list of scalars is sliced."""
    kind = type(value)
    if kind is dict:
        out = value.copy()
        for k, v in value.items():
            inner = type(v)
            if inner is list:
                out[k] = copy_json(v) if v else []
            elif inner not in ATOMS:
                out[k] = copy_json(v)
        return out
    if kind is list:
        for v in value:
            if type(v) not in ATOMS:
                return [v if type(v) in ATOMS else copy_json(v) for v in value]
        return value[:]
    if isinstance(value, dict):
        return {k: copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_json(v) for v in value]
    return value
