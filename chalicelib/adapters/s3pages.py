"""ListObjectVersions pages read from the raw response body, one compact tuple per entry.

Verification lists every version of both buckets; botocore's generic parser builds a dict per element
(a shape walk per field, dateutil per timestamp) and a second full parse of every 200 response looking for
an embedded error. That was most of the CPU a listing shard spent per object. Here botocore still builds,
signs, sends, retries and raises errors as it does for any call; only a successful page's body is read by
`parse_versions` (ElementTree's C parser, one pass) instead, through the client's `before-parse` hook,
and only for calls made through `list_versions_page` (the flag is per thread: other callers of the same
client get botocore's parse as before).

A 200 answer whose body is not well-formed XML (cut short in transit) or is an S3 error embedded in it
becomes a 500, which botocore retries as its own check would make it. Any other body the parser does not
understand fails loudly (`UnexpectedListing`), never an empty page: another root element, an entry without
its key, IsLatest, timestamp or size, a value of the wrong type. Elements it does not use
(Owner, StorageClass, RestoreStatus, fields S3 adds later) are ignored, as botocore ignores unmodelled ones.
"""

from __future__ import annotations

import contextlib
import gc
import operator
import threading
import weakref
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, NamedTuple
from urllib.parse import unquote_plus

from botocore import handlers as botocore_handlers

PAGE_KEY = "LifeboatVersionPage"
"""Where the hook leaves the parsed page in botocore's response (customized_response_dict)."""

EMPTY_RESULT = b'<ListVersionsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"></ListVersionsResult>'
"""What botocore's parser is handed instead of a page already read here."""

Entry = tuple[str, bool, bool, str | None, int, str | None, datetime, str | None]
"""(key, is delete marker, is latest, version id, size, ETag without quotes, last modified (UTC),
checksum type). A delete marker has size 0 and no ETag."""


class UnexpectedListing(ValueError):
    """A ListObjectVersions body this parser does not understand."""


class VersionPage(NamedTuple):
    entries: list[Entry]
    """The page's versions and delete markers, sorted by key (S3 order), a key's entries newest first."""
    truncated: bool
    next_key_marker: str | None
    next_version_id_marker: str | None


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _utc(value: datetime) -> datetime:
    if value.tzinfo is UTC:  # what fromisoformat makes of S3's "...Z"
        return value
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _timestamp(text: str | None) -> datetime:
    if not text:
        raise UnexpectedListing("an entry without LastModified")
    try:
        return _utc(datetime.fromisoformat(text))
    except ValueError as exc:
        raise UnexpectedListing(f"LastModified {text!r} is not an ISO 8601 timestamp") from exc


def _flag(text: str | None, name: str) -> bool:
    if text == "true":
        return True
    if text == "false":
        return False
    raise UnexpectedListing(f"{name} is {text!r}, not true/false")


_ORDER = operator.itemgetter(0, 1)
"""Sort key of entries, (key, is a delete marker): a stable sort keeps each kind's newest-first order."""


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused while a page is read.

    A page makes ~11,000 elements and 1,000 entries, none of them in a reference cycle (freed by reference
    counting alone), and each batch of new objects sets off a collection that walks the long-lived ones
    too: in a process holding botocore's service models and the plan, that more than doubled the time to
    read a page. Other threads may pause and resume it too; the last to finish resumes it (a collection
    missed meanwhile only runs later: nothing is freed any later than by reference counting).
    """
    global _pausing
    with _pause_lock:
        _pausing += 1
        if _pausing == 1:
            _pause_state["was_enabled"] = gc.isenabled()
            gc.disable()
    try:
        yield
    finally:
        with _pause_lock:
            _pausing -= 1
            if _pausing == 0 and _pause_state["was_enabled"]:
                gc.enable()


_pausing = 0
_pause_lock = threading.Lock()
_pause_state = {"was_enabled": True}


def _read(body: bytes) -> VersionPage | None:
    """The page of a body, or None when the body is an S3 error (embedded in a 200). Raises ET.ParseError
    when it is not XML, UnexpectedListing when it is another document.

    The element tree is freed before the collector resumes: resumed with the tree alive, it would walk
    every element of it at once (the work the pause saves)."""
    with _collector_paused():
        root = ET.fromstring(body)
        try:
            return None if _local(root.tag) == "Error" else _page(root)
        finally:
            del root


def parse_versions(body: bytes) -> VersionPage:
    """One ListObjectVersions response body (ListVersionsResult) as a `VersionPage`."""
    try:
        page = _read(body)
    except ET.ParseError as exc:
        raise UnexpectedListing(f"not XML: {exc}") from exc
    if page is None:
        raise UnexpectedListing("root element 'Error', not ListVersionsResult")
    return page


def _page(root: ET.Element) -> VersionPage:
    if _local(root.tag) != "ListVersionsResult":
        raise UnexpectedListing(f"root element {_local(root.tag)!r}, not ListVersionsResult")
    ns = root.tag[: len(root.tag) - len("ListVersionsResult")]
    version_tag, marker_tag = ns + "Version", ns + "DeleteMarker"
    # An entry's fields by their qualified tags (an unknown element is a key nobody asks for).
    key_tag, id_tag, latest_tag, modified_tag, etag_tag, size_tag, checksum_tag = (
        ns + name for name in ("Key", "VersionId", "IsLatest", "LastModified", "ETag", "Size", "ChecksumType")
    )
    top: dict[str, str | None] = {}
    raw: list[tuple[bool, dict[str, str | None]]] = []
    for child in root:
        tag = child.tag
        if tag in (version_tag, marker_tag):
            raw.append((tag == marker_tag, {f.tag: f.text for f in child}))
        else:
            top[_local(tag)] = child.text
    decode = top.get("EncodingType") == "url"
    entries: list[Entry] = []
    append = entries.append
    for deleted, found in raw:
        if key_tag not in found:
            raise UnexpectedListing("an entry without a Key")
        key = found[key_tag] or ""
        if decode:
            key = unquote_plus(key)
        etag = found.get(etag_tag)
        if deleted:
            size_value = 0
        else:
            size = found.get(size_tag)
            try:
                size_value = int(size or "")
            except ValueError as exc:
                raise UnexpectedListing(f"{key!r}: Size {size!r} is not an integer") from exc
        append(
            (
                key,
                deleted,
                _flag(found.get(latest_tag), "IsLatest"),
                found.get(id_tag),
                size_value,
                etag.strip('"') or None if etag else None,
                _timestamp(found.get(modified_tag)),
                found.get(checksum_tag),
            )
        )
    # S3 interleaves versions and delete markers in key order, moto lists the markers last: in both, a
    # key's versions, then its delete markers, each newest first (the order botocore's lists give).
    entries.sort(key=_ORDER)
    next_key = top.get("NextKeyMarker")
    if next_key and decode:
        next_key = unquote_plus(next_key)
    return VersionPage(
        entries=entries,
        truncated=_flag(top.get("IsTruncated") or "false", "IsTruncated"),
        next_key_marker=next_key or None,
        next_version_id_marker=top.get("NextVersionIdMarker") or None,
    )


def from_botocore(page: dict[str, Any]) -> VersionPage:
    """The same page from botocore's parsed response (a client without the hook: a fake, a stub)."""
    merged: list[Entry] = []
    for v in page.get("Versions", []):
        etag = str(v.get("ETag") or "").strip('"') or None
        merged.append(
            (
                v["Key"],
                False,
                bool(v.get("IsLatest")),
                v.get("VersionId"),
                int(v["Size"]),
                etag,
                _utc(v["LastModified"]),
                v.get("ChecksumType"),
            )
        )
    for m in page.get("DeleteMarkers", []):
        merged.append(
            (
                m["Key"],
                True,
                bool(m.get("IsLatest")),
                m.get("VersionId"),
                0,
                None,
                _utc(m["LastModified"]),
                None,
            )
        )
    merged.sort(key=_ORDER)
    return VersionPage(
        entries=merged,
        truncated=bool(page.get("IsTruncated")),
        next_key_marker=page.get("NextKeyMarker") or None,
        next_version_id_marker=page.get("NextVersionIdMarker") or None,
    )


# -- the hook ---------------------------------------------------------------------------------------------
_wanted = threading.local()


def _before_parse(
    response_dict: dict[str, Any],
    customized_response_dict: dict[str, Any],
    operation_model: Any = None,
    **_: Any,
) -> None:
    if (
        not getattr(_wanted, "on", False)
        or getattr(operation_model, "name", None) != "ListObjectVersions"
        or response_dict.get("status_code") != 200
    ):
        return
    try:
        page = _read(response_dict.get("body") or b"")  # another shape raises UnexpectedListing
    except ET.ParseError:
        # Cut short in transit: a 500, which botocore retries (as its own check of 200 answers would).
        response_dict["status_code"] = 500
        return
    if page is None:  # an error S3 embedded in a 200: the same
        response_dict["status_code"] = 500
        return
    customized_response_dict[PAGE_KEY] = page
    response_dict["body"] = EMPTY_RESULT


HOOK_ID = "lifeboat-version-pages"
_installed: weakref.WeakSet[Any] = weakref.WeakSet()
_install_lock = threading.Lock()


def _install(s3: Any) -> bool:
    """Register the hook on a botocore client once; False for a client without events (a fake).

    botocore calls the handlers of `before-parse.s3.*` before those of the operation's own event, and its
    check for an error embedded in a 200 (`_handle_200_error`, the first of them) parses the whole body.
    So the hook is registered there, ahead of that check, which then sees the one-element body.
    """
    events = getattr(getattr(s3, "meta", None), "events", None)
    if events is None or not hasattr(events, "register_first"):
        return False
    with _install_lock:
        if s3 in _installed:
            return True
        check = getattr(botocore_handlers, "_handle_200_error", None)
        if check is not None:
            events.unregister("before-parse.s3.*", check)
        events.register_first("before-parse.s3.*", _before_parse, unique_id=HOOK_ID)
        if check is not None:
            events.register_first("before-parse.s3.*", check)
        _installed.add(s3)
    return True


def list_versions_page(s3: Any, **kwargs: Any) -> VersionPage:
    """One ListObjectVersions call (botocore signs, sends, retries, raises), its page read from the body.

    Keys come back decoded: botocore asks S3 to URL-encode them (`kwargs` must not set EncodingType)."""
    if "EncodingType" in kwargs:
        raise ValueError("list_versions_page decodes keys itself: do not pass EncodingType")
    if not _install(s3):
        return from_botocore(s3.list_object_versions(**kwargs))
    _wanted.on = True
    try:
        response = s3.list_object_versions(**kwargs)
    finally:
        _wanted.on = False
    page = response.get(PAGE_KEY)
    return page if page is not None else from_botocore(response)


def iter_pages(s3: Any, kwargs: dict[str, Any]) -> Iterator[VersionPage]:
    """Every page of a listing (`kwargs` of the first call; the markers are moved on in it)."""
    while True:
        page = list_versions_page(s3, **kwargs)
        yield page
        if not page.truncated:
            return
        kwargs["KeyMarker"] = page.next_key_marker
        if page.next_version_id_marker:
            kwargs["VersionIdMarker"] = page.next_version_id_marker
        else:
            kwargs.pop("VersionIdMarker", None)
