"""Limits on what ingest reads: body size after decompression, JSON depth, storable values.

Every check here runs before anything recursive or costly: the nesting depth of JSON text is
measured by a scan over its brackets (no parsing), a compressed body is inflated only up to
the size limit, and values are checked against what every store can hold (finite numbers,
UTF-8 text without NUL) so that one event's bad value is that event's refusal and never a
failed transaction shared with other clients.
"""

from __future__ import annotations

import json
import math
import os
import re
import zlib
from typing import Any

import numpy as np

DEFAULT_MAX_DEPTH = 64
# A JSON string literal, or an unterminated one up to the end of its line or the text (so a
# match always succeeds from a quote and the scan stays linear).
_STRING = re.compile(rb'"(?:[^"\\\n]|\\[^\n])*(?:"|\\?(?=\n)|\\?\Z)')
_KEEP = bytes(range(256)).translate(None, b"[]{}\n")  # every byte except brackets and \n
_STRUCTURAL = np.frombuffer(b"[]{}\n", dtype=np.uint8)
_OPEN = np.zeros(256, dtype=np.int8)
_OPEN[[ord("["), ord("{")]] = 1
_OPEN[[ord("]"), ord("}")]] = -1


class TooLarge(ValueError):
    """A body is larger than the limit once decompressed."""


class Refused(ValueError):
    """JSON text or a value that ingest will not take; ``status`` is the HTTP answer."""

    def __init__(self, message: str, status: int = 400, kind: str = "value") -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind  # malformed | deep | nonfinite | value | encoding


def max_depth() -> int:
    """Deepest JSON nesting accepted (``CXM_INGEST_MAX_DEPTH``, default 64)."""
    return max(1, int(os.environ.get("CXM_INGEST_MAX_DEPTH", str(DEFAULT_MAX_DEPTH))))


def too_deep(data: bytes, limit: int, *, per_line: bool = False) -> int | None:
    """The byte offset where ``data``'s JSON nesting first passes ``limit``, or None.

    Strings are cut out with one regular expression, then ``[``/``{`` count +1 and ``]``/``}``
    -1 in a running sum (numpy), so the cost is linear and nothing recurses. With
    ``per_line`` (JSON Lines) the count restarts at each line break. For text that is not
    valid JSON the result may overstate the depth, never understate it before the first
    error, which is all a parser would read.
    """
    if not data or (data.count(b"[") + data.count(b"{")) <= limit:
        return None
    if not per_line and _depth_outside_strings(data) <= limit:
        return None
    stripped = _STRING.sub(b"", data)
    chars = np.frombuffer(stripped.translate(None, _KEEP), dtype=np.uint8)
    running = np.cumsum(_OPEN[chars].astype(np.int64))
    if per_line:
        breaks = chars == ord("\n")
        if breaks.any():
            last = np.maximum.accumulate(np.where(breaks, np.arange(len(chars)), -1))
            running = running - np.where(last >= 0, running[np.maximum(last, 0)], 0)
    over = np.flatnonzero(running > limit)
    if not len(over):
        return None
    # Only on refusal: map the position back to the original text.
    structural = np.isin(np.frombuffer(stripped, dtype=np.uint8), _STRUCTURAL)
    at = int(np.flatnonzero(structural)[over[0]])
    removed = 0
    for match in _STRING.finditer(data):
        if match.start() - removed > at:
            break
        removed += match.end() - match.start()
    return at + removed


def _depth_outside_strings(data: bytes) -> int:
    """The deepest nesting of one JSON text, in C-speed steps: escaped backslashes and quotes
    are dropped, the text is split at the remaining quotes and every other piece (outside the
    strings) is kept. Exact up to the first syntax error, which is as far as a parser reads."""
    plain = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    outside = b"".join(plain.split(b'"')[::2]).translate(None, _KEEP)
    if not outside:
        return 0
    steps = _OPEN[np.frombuffer(outside, dtype=np.uint8)].astype(np.int64)
    return int(np.cumsum(steps).max())


def position(data: bytes, offset: int) -> str:
    """``line L, column C`` (1-based, columns in bytes) of a byte offset."""
    line = data.count(b"\n", 0, offset) + 1
    column = offset - (data.rfind(b"\n", 0, offset) + 1) + 1
    return f"line {line}, column {column}"


class _NonFinite(float):
    """Stands in for NaN / Infinity while parsing, so the field can be named afterwards."""


def _constant(text: str) -> float:
    return _NonFinite("nan")


def _float(text: str) -> float:
    value = float(text)
    return value if math.isfinite(value) else _NonFinite(value)


def _path_of_nonfinite(value: Any, path: str) -> str | None:
    if isinstance(value, _NonFinite):
        return path
    if isinstance(value, dict):
        for key, item in value.items():
            found = _path_of_nonfinite(item, f"{path}.{key}" if path else str(key))
            if found:
                return found
    elif isinstance(value, list):
        for n, item in enumerate(value):
            found = _path_of_nonfinite(item, f"{path}[{n}]")
            if found:
                return found
    return None


def loads(
    data: bytes | str, *, what: str = "body", limit: int | None = None, prefix: str = ""
) -> Any:
    """JSON text as Python values, refusing what ingest cannot store.

    Raises ``Refused`` with status 400 for malformed JSON or nesting deeper than ``limit``
    (checked before parsing) and 422 for ``NaN``/``Infinity`` or a number too large for a
    double, naming the field (``events[2].properties.score``).
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    depth = max_depth() if limit is None else limit
    at = too_deep(raw, depth)
    if at is not None:
        raise Refused(
            f"{what}: JSON nested deeper than {depth} levels at {position(raw, at)} "
            "(CXM_INGEST_MAX_DEPTH)",
            kind="deep",
        )
    seen: list[bool] = []

    def constant(text: str) -> float:
        seen.append(True)
        return _constant(text)

    def number(text: str) -> float:
        value = _float(text)
        if isinstance(value, _NonFinite):
            seen.append(True)
        return value

    try:
        value = json.loads(raw, parse_constant=constant, parse_float=number)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise Refused(f"{what}: malformed JSON ({exc})", kind="malformed") from None
    except ValueError:  # an integer of more digits than Python converts
        raise Refused(
            f"{what}: a number has too many digits (at most 4300)", 422, "nonfinite"
        ) from None
    except RecursionError:  # a limit set above what the parser can recurse
        raise Refused(f"{what}: JSON nested too deeply to read", kind="deep") from None
    if seen:
        path = _path_of_nonfinite(value, prefix) or prefix or "value"
        raise Refused(
            f"{path}: NaN and Infinity are not JSON numbers; send a finite number or null",
            422,
            "nonfinite",
        )
    return value


def inflate(body: bytes, encoding: str, limit: int) -> bytes:
    """The body decoded per ``Content-Encoding`` (gzip, deflate or none), at most ``limit``
    bytes; raises ``TooLarge`` past the limit and ``Refused`` for a corrupt or unknown
    encoding. Decompression stops at the limit, so a small bomb costs little."""
    name = encoding.strip().lower()
    if name in ("", "identity"):
        return body
    if name not in ("gzip", "x-gzip", "deflate"):
        raise Refused(f"body: content-encoding '{encoding}' is not supported; use gzip", 415)
    out = bytearray()
    rest = body
    while rest:
        inflater = zlib.decompressobj(47 if name != "deflate" else 15)
        try:
            out += inflater.decompress(rest, limit + 1 - len(out))
            if len(out) > limit:
                raise TooLarge(f"body exceeds the limit of {limit} bytes once decompressed")
            if not inflater.eof:
                if inflater.unconsumed_tail:  # stopped by max_length, exactly at the limit
                    raise TooLarge(f"body exceeds the limit of {limit} bytes once decompressed")
                raise Refused(f"body: content-encoding is {name} but the body is truncated")
        except zlib.error:
            if name == "deflate" and not out:  # some clients send raw deflate
                return inflate_raw(body, limit)
            raise Refused(f"body: content-encoding is {name} but the body is not") from None
        rest = inflater.unused_data.lstrip(b"\0")
    return bytes(out)


def inflate_raw(body: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj(-15)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error:
        raise Refused("body: content-encoding is deflate but the body is not") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise TooLarge(f"body exceeds the limit of {limit} bytes once decompressed")
    return out


def shown(text: str) -> str:
    """Text safe to put in an answer: a lone surrogate is written as ``\\udXXX``."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


# What a JSON text must spell out for a parsed string to hold a NUL or a lone surrogate.
_UNSTORABLE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])|\xed[\xa0-\xbf]")


def storable_json(raw: bytes) -> bool:
    """Whether no string parsed from the JSON text ``raw`` can hold a NUL or a lone surrogate.

    In UTF-8 JSON text a NUL can only be written as the escape ``\\u0000`` (a raw one is
    malformed) and a lone surrogate as ``\\udXXX`` or as the bytes ``ED A0..BF`` (which
    ``json.loads`` lets through), so a text without those yields only storable strings;
    ``loads`` refuses non-finite numbers, so such a body needs none of ``check_text`` /
    ``check_document``'s checks. Conservative: a valid surrogate pair, an escaped backslash
    before ``u0000`` or a body in UTF-16/32 answers False, and the checks run as usual.
    """
    if json.detect_encoding(raw) not in ("utf-8", "utf-8-sig"):
        return False
    return _UNSTORABLE.search(raw) is None


def check_text(value: str, field: str) -> None:
    """Refuse text no store can hold: NUL characters and lone surrogates (not UTF-8)."""
    if "\x00" in value:
        raise Refused(f"{field}: contains a NUL character (\\u0000), which cannot be stored", 422)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise Refused(
            f"{field}: contains a lone surrogate (U+{ord(value[exc.start]):04X}) at character "
            f"{exc.start}; text must be valid Unicode",
            422,
        ) from None


def check_document(value: Any, field: str) -> None:
    """Refuse a JSON document no store can hold (non-finite numbers, NUL, lone surrogates).

    One C-speed ``json.dumps`` decides; only a refused document is walked to name the field.
    """
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, default=str)
        text.encode("utf-8")
    except ValueError:  # NaN / Infinity, or (UnicodeEncodeError) a lone surrogate
        raise Refused(_find_bad(value, field), 422) from None
    if "\\u0000" in text:  # a NUL, or text that spells one out: the walk decides
        found = _bad(value, field)
        if found:
            raise Refused(found, 422)


def _find_bad(value: Any, path: str) -> str:
    """The first refused value's field and reason (``properties.note: contains ...``)."""
    return _bad(value, path) or f"{path}: cannot be stored"


def _bad(value: Any, path: str) -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return f"{path}: {value} is not a JSON number; send a finite number or null"
    if isinstance(value, str):
        try:
            check_text(value, path)
        except Refused as exc:
            return str(exc)
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            key_text = str(key)
            try:
                check_text(key_text, f"{path} (a key)")
            except Refused as exc:
                return str(exc)
            found = _bad(item, f"{path}.{key_text}")
            if found:
                return found
    elif isinstance(value, (list, tuple)):
        for n, item in enumerate(value):
            found = _bad(item, f"{path}[{n}]")
            if found:
                return found
    return None
