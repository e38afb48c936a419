"""ListObjectVersions pages read from the raw body (chalicelib/adapters/s3pages.py): the same answers as
botocore's parser, for any keys, versions, delete markers and page edges; errors still raised and retried."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote_plus
from xml.sax.saxutils import escape

import botocore.session
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError
from botocore.handlers import decode_list_object_versions
from botocore.parsers import RestXMLParser
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.adapters.s3objects import iter_object_versions
from chalicelib.adapters.s3pages import (
    UnexpectedListing,
    VersionPage,
    from_botocore,
    list_versions_page,
    parse_versions,
)
from tests.unit.moto_aws import ClientFor, bucket

OUTPUT = botocore.session.get_session().get_service_model("s3").operation_model("ListObjectVersions")
NS = "http://s3.amazonaws.com/doc/2006-03-01/"


def botocore_page(body: bytes) -> VersionPage:
    """What botocore makes of the body (its parser, then its URL-decoding handler), as a VersionPage."""
    parsed = RestXMLParser().parse({"body": body, "headers": {}, "status_code": 200}, OUTPUT.output_shape)
    decode_list_object_versions(parsed, context={"encoding_type_auto_set": True})
    return from_botocore(parsed)


# -- bodies as S3 writes them -----------------------------------------------------------------------------
XML_TEXT = st.characters(
    blacklist_categories=("Cs",),
    blacklist_characters="\x00\ufffe\uffff",
).filter(lambda c: c in "\t\n" or ord(c) >= 0x20)
"""Characters XML 1.0 can carry ('\r' is normalised away by every XML parser, so it is left out)."""
ANY_TEXT = st.characters(blacklist_categories=("Cs",))
AWKWARD = st.sampled_from(
    ["&", "<", ">", '"', "'", " ", "+", "%", "%20", "]]>", "&amp;", "é", "€", "/", "\t"]
)


def keys(alphabet: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.lists(st.one_of(alphabet, AWKWARD), min_size=1, max_size=12).map("".join)


TIMES = st.datetimes(min_value=datetime(2006, 3, 1), max_value=datetime(2099, 1, 1)).map(
    lambda t: t.replace(microsecond=t.microsecond // 1000 * 1000)
)


@st.composite
def bodies(draw: st.DrawFn, *, url: bool) -> bytes:
    names = sorted(set(draw(st.lists(keys(ANY_TEXT if url else XML_TEXT), max_size=8))))
    encode = (lambda k: quote_plus(k.encode())) if url else escape
    entries: list[tuple[str, bool, str]] = []
    for key in names:
        kinds = draw(st.lists(st.booleans(), min_size=1, max_size=3))  # True: a delete marker; newest first
        for i, marker in enumerate(kinds):
            when = draw(TIMES)
            stamp = when.strftime("%Y-%m-%dT%H:%M:%S") + draw(
                st.sampled_from(["", f".{when.microsecond // 1000:03d}"])
            )
            fields = [
                f"<Key>{encode(key)}</Key>",
                f"<VersionId>{draw(st.sampled_from(['null', 'v' + str(i), '3/L4kqtJl&amp;x']))}</VersionId>",
                f"<IsLatest>{'true' if i == 0 else 'false'}</IsLatest>",
                f"<LastModified>{stamp}Z</LastModified>",
                "<Owner><ID>abc</ID><DisplayName>me</DisplayName></Owner>",
            ]
            if not marker:
                fields += [
                    f"<ETag>&quot;{draw(st.sampled_from(['d41d8cd9', 'e2fc-3', '']))}&quot;</ETag>",
                    f"<Size>{draw(st.integers(0, 5 * 1024**4))}</Size>",
                    "<StorageClass>STANDARD</StorageClass>",
                ]
                if draw(st.booleans()):
                    fields.append(
                        f"<ChecksumType>{draw(st.sampled_from(['FULL_OBJECT', 'COMPOSITE']))}</ChecksumType>"
                    )
                    fields.append("<ChecksumAlgorithm>CRC32</ChecksumAlgorithm>")
            fields = draw(st.permutations(fields))
            tag = "DeleteMarker" if marker else "Version"
            entries.append((key, marker, f"<{tag}>{''.join(fields)}</{tag}>"))
    if draw(st.booleans()):  # moto lists the delete markers after the versions; S3 interleaves them
        entries.sort(key=lambda e: e[1])
    truncated = bool(names) and draw(st.booleans())
    top = [f"<Name>b</Name><Prefix>{encode(draw(keys(XML_TEXT)))}</Prefix><KeyMarker></KeyMarker>"]
    top.append("<VersionIdMarker></VersionIdMarker><MaxKeys>1000</MaxKeys>")
    top.append(f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>")
    if truncated:
        top.append(
            f"<NextKeyMarker>{encode(names[-1])}</NextKeyMarker><NextVersionIdMarker>v0</NextVersionIdMarker>"
        )
    if url:
        top.append("<EncodingType>url</EncodingType>")
    if draw(st.booleans()):
        top.append("<Delimiter>/</Delimiter><CommonPrefixes><Prefix>d/</Prefix></CommonPrefixes>")
    children = [*draw(st.permutations(top)), *(e[2] for e in entries)]
    xmlns = f' xmlns="{NS}"' if draw(st.booleans()) else ""
    root = f"<ListVersionsResult{xmlns}>{''.join(children)}</ListVersionsResult>"
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + root).encode()


@settings(max_examples=300, deadline=None)
@given(bodies(url=False))
def test_a_page_reads_exactly_as_botocore_reads_it(body: bytes) -> None:
    # Given a ListObjectVersions body with awkward keys (XML escapes), versions, delete markers, page edges
    # When both parsers read it / Then they find the same entries, in the same order, and the same markers
    assert parse_versions(body) == botocore_page(body)


@settings(max_examples=300, deadline=None)
@given(bodies(url=True))
def test_a_url_encoded_page_reads_exactly_as_botocore_reads_it(body: bytes) -> None:
    # Given keys S3 URL-encodes (EncodingType=url: any character, control characters too)
    # When both parsers read it / Then the keys and the next marker are decoded alike
    assert parse_versions(body) == botocore_page(body)


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>", "root element"),
        (b"<ListVersionsResult><Version><Size>1</Size></Version></ListVersionsResult>", "without a Key"),
        (
            b"<ListVersionsResult><Version><Key>k</Key><IsLatest>true</IsLatest><Size>x</Size>"
            b"<LastModified>2024-01-01T00:00:00Z</LastModified></Version></ListVersionsResult>",
            "not an integer",
        ),
        (
            b"<ListVersionsResult><Version><Key>k</Key><IsLatest>yes</IsLatest><Size>1</Size>"
            b"<LastModified>2024-01-01T00:00:00Z</LastModified></Version></ListVersionsResult>",
            "IsLatest",
        ),
        (
            b"<ListVersionsResult><Version><Key>k</Key><IsLatest>true</IsLatest><Size>1</Size>"
            b"</Version></ListVersionsResult>",
            "LastModified",
        ),
        (b"<ListVersionsResult><Version>", "not XML"),
    ],
)
def test_a_body_of_another_shape_fails_loudly(body: bytes, why: str) -> None:
    # Given a body that is not a ListObjectVersions page as documented / When read / Then it is an error
    with pytest.raises(UnexpectedListing, match=why):
        parse_versions(body)


# -- through a client ------------------------------------------------------------------------------------
AWKWARD_KEYS = ["a&b<c>.csv", "q\"u'o te.csv", "ü nï©ødé €.csv", "plus+sign%20pct.csv", "tab\tkey"]


def test_the_client_reads_pages_from_the_body_and_other_callers_still_get_botocores(aws: ClientFor) -> None:
    # Given a versioned bucket with awkward keys, overwrites and a deletion
    bucket(aws, "pages", "us-east-1")
    s3 = aws("s3", "us-east-1")
    for key in AWKWARD_KEYS:
        s3.put_object(Bucket="pages", Key=key, Body=b"1")
        s3.put_object(Bucket="pages", Key=key, Body=b"22")
    s3.delete_object(Bucket="pages", Key=AWKWARD_KEYS[0])
    # When a page is listed through the hook, and the same call made the ordinary way
    page = list_versions_page(s3, Bucket="pages", Prefix="")
    plain = s3.list_object_versions(Bucket="pages", Prefix="")
    # Then both say the same, and the ordinary call is untouched (botocore's dicts)
    assert page == from_botocore(plain)
    assert len(plain["Versions"]) == 10 and len(plain["DeleteMarkers"]) == 1
    assert {e[0] for e in page.entries} == set(AWKWARD_KEYS)


def test_versions_group_into_current_objects_across_page_edges(aws: ClientFor) -> None:
    # Given keys with several versions, one whose current version is a delete marker
    bucket(aws, "edges", "us-east-1")
    s3 = aws("s3", "us-east-1")
    for i, key in enumerate(["p/a", "p/b&c", "p/d", "p/e"]):
        for n in range(i + 1):
            s3.put_object(Bucket="edges", Key=key, Body=b"x" * (n + 1))
    s3.delete_object(Bucket="edges", Key="p/d")
    at = datetime(2030, 1, 1, tzinfo=UTC)
    # When listed two entries a page (a key's versions split across pages)
    found = list(iter_object_versions(s3, "edges", "p/", page_size=2, clock=lambda: at))
    # Then each live key appears once, its newest version, with its version count and the page's time
    assert [(o.key, o.size, o.version_count) for o in found] == [("a", 1, 1), ("b&c", 2, 2), ("e", 4, 4)]
    assert all(o.listed_at == at and o.version_id for o in found)
    assert found == list(iter_object_versions(s3, "edges", "p/", clock=lambda: at))


class Raw:
    """A urllib3-like body for a canned HTTP response."""

    def __init__(self, body: bytes) -> None:
        self._body = io.BytesIO(body)

    def stream(self, *_: Any, **__: Any) -> Any:
        yield self._body.read()


def answering(s3: Any, bodies: list[tuple[int, bytes]]) -> list[int]:
    """Make `s3` answer ListObjectVersions with `bodies` in turn (status, body); returns the calls seen."""
    seen: list[int] = []

    def send(request: Any, **_: Any) -> AWSResponse:
        status, body = bodies[min(len(seen), len(bodies) - 1)]
        seen.append(status)
        return AWSResponse(request.url, status, {}, Raw(body))

    s3.meta.events.register_first("before-send.s3.ListObjectVersions", send)
    return seen


GOOD = (
    f'<ListVersionsResult xmlns="{NS}"><IsTruncated>false</IsTruncated><Version><Key>k</Key>'
    "<VersionId>v</VersionId><IsLatest>true</IsLatest><LastModified>2024-01-01T00:00:00.000Z</LastModified>"
    "<ETag>&quot;e&quot;</ETag><Size>3</Size></Version></ListVersionsResult>"
).encode()


@pytest.mark.parametrize(
    "first",
    [
        (200, b"<Error><Code>InternalError</Code><Message>embedded</Message></Error>"),
        (200, GOOD[:50]),  # cut short in transit, in the root element
        (200, GOOD[:-40]),  # cut short in transit, in an entry
        (503, b"<Error><Code>SlowDown</Code><Message>slow</Message></Error>"),
    ],
)
def test_an_error_or_a_cut_page_is_retried_as_botocore_retries_it(
    aws: ClientFor, first: tuple[int, bytes]
) -> None:
    # Given S3 answers first with an error (embedded in a 200, a cut body, a 503), then with the page
    s3 = aws("s3", "eu-west-1")
    seen = answering(s3, [first, (200, GOOD)])
    # When a page is listed / Then botocore retried and the page is read
    page = list_versions_page(s3, Bucket="b", Prefix="")
    assert seen == [first[0], 200]
    assert [(e[0], e[4], e[5]) for e in page.entries] == [("k", 3, "e")]


def test_an_error_that_persists_raises_the_client_error(aws: ClientFor) -> None:
    # Given S3 answers AccessDenied
    s3 = aws("s3", "eu-west-1")
    answering(s3, [(403, b"<Error><Code>AccessDenied</Code><Message>no</Message></Error>")])
    # When a page is listed / Then botocore's error is raised, code and all
    with pytest.raises(ClientError) as raised:
        list_versions_page(s3, Bucket="b", Prefix="")
    assert raised.value.response["Error"]["Code"] == "AccessDenied"


def test_a_page_of_another_shape_is_an_error_not_an_empty_listing(aws: ClientFor) -> None:
    # Given a 200 answer that is well-formed XML but not a ListObjectVersions page
    s3 = aws("s3", "eu-west-1")
    answering(s3, [(200, b"<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>")])
    # When a page is listed / Then it fails loudly
    with pytest.raises(UnexpectedListing, match="root element"):
        list_versions_page(s3, Bucket="b", Prefix="")


def test_a_client_without_events_is_read_through_botocores_shape() -> None:
    # Given a fake client (no botocore events) answering botocore-shaped pages
    when = datetime(2024, 1, 1, tzinfo=UTC)

    class Fake:
        def list_object_versions(self, **_: Any) -> dict[str, Any]:
            return {
                "IsTruncated": False,
                "Versions": [
                    {"Key": "k", "VersionId": "v", "IsLatest": True, "LastModified": when, "Size": 3}
                ],
                "DeleteMarkers": [
                    {"Key": "k", "VersionId": "m", "IsLatest": False, "LastModified": when - timedelta(1)}
                ],
            }

    # When a page is listed / Then it is the same VersionPage
    page = list_versions_page(Fake(), Bucket="b")
    assert page.entries == [
        ("k", False, True, "v", 3, None, when, None),
        ("k", True, False, "m", 0, None, when - timedelta(1), None),
    ]


def test_the_collector_is_paused_while_a_page_is_read_and_resumed_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a page to read, and a reader that notes whether the cyclic collector runs meanwhile
    import gc

    from chalicelib.adapters import s3pages

    seen: list[bool] = []
    real_page = s3pages._page

    def noting(root: Any) -> VersionPage:
        seen.append(gc.isenabled())
        return real_page(root)

    monkeypatch.setattr(s3pages, "_page", noting)
    assert gc.isenabled()
    # When it is read (and a second time with the collector already off, as a caller may have it)
    page = parse_versions(GOOD)
    gc.disable()
    try:
        parse_versions(GOOD)
        still_off = not gc.isenabled()
    finally:
        gc.enable()
    # Then the collector was paused during each read, resumed after the first, left off after the second
    assert [e[0] for e in page.entries] == ["k"]
    assert seen == [False, False]
    assert still_off
    # And a body that is not XML resumes it too
    with pytest.raises(UnexpectedListing):
        parse_versions(GOOD[:50])
    assert gc.isenabled()
