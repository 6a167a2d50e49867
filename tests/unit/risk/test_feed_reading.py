"""How a feed is read fast, and still exactly as before: lines decoded a chunk at a time as
each would be on its own, plain CSV lines split at their commas as the csv module splits
them, records laid out as ``from_csv_record`` lays them out, every line of an import still
accounted for, and the garbage collector's pace restored after an import. No I/O."""

from __future__ import annotations

import csv
import gc
from collections.abc import AsyncIterator

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from services.risk.domain.feeds import _Columns, from_csv_record, lines_of
from services.risk.service_layer.signals import _fewer_collections


async def lines_as_before(chunks: AsyncIterator[bytes]) -> AsyncIterator[str]:
    """lines_of as it was: split into lines first, then each line decoded."""
    pending = b""
    async for chunk in chunks:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line.decode("utf-8-sig", errors="replace").rstrip("\r")
    if pending:
        yield pending.decode("utf-8-sig", errors="replace").rstrip("\r")


BYTES = st.lists(
    st.sampled_from(
        [
            b"a",
            b",",
            b"\n",
            b"\r",
            b"\r\n",
            b'"',
            b"\xef\xbb\xbf",
            b"\xc3\xa9",
            b"\xc3",
            b"\xa9",
            b"\xe2\x82",
            b"\xac",
            b"\xff",
            b"\x00",
            b" ",
            "王".encode(),
            b"\xf0\x9f\x98",
        ]
    ),
    max_size=60,
).map(b"".join)


async def read_all(lines: AsyncIterator[str]) -> list[str]:
    return [line async for line in lines]


@settings(max_examples=400, deadline=None)
@given(BYTES, st.lists(st.integers(1, 7), min_size=1, max_size=5))
async def test_lines_are_decoded_as_each_line_alone_would_be(body: bytes, cuts: list[int]) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        at, index = 0, 0
        while at < len(body):
            size = cuts[index % len(cuts)]
            yield body[at : at + size]
            at, index = at + size, index + 1

    assert await read_all(lines_of(chunks())) == await read_all(lines_as_before(chunks()))


PLAIN = st.text(alphabet=st.sampled_from(list("ab ,\t\x01é王\\'")), max_size=30)


@settings(max_examples=400, deadline=None)
@given(PLAIN)
def test_a_line_with_no_quote_is_split_as_the_csv_module_splits_it(text: str) -> None:
    assume(text.strip())  # a blank line is skipped before it is split
    assert text.split(",") == next(csv.reader([text], strict=True))


HEADERS = st.lists(
    st.sampled_from(
        [
            "type",
            "council",
            "given_name",
            "family_name",
            "postcode",
            "weeks",
            "amount",
            "",
            "resident",
            "attributes",
            "source",
            "observed_on",
            "uprn",
        ]
    ),
    min_size=1,
    max_size=8,
    unique=True,
)


@settings(max_examples=300, deadline=None)
@given(HEADERS, st.data())
def test_columns_lay_out_a_record_as_from_csv_record_does(
    header: list[str], data: st.DataObject
) -> None:
    cells = data.draw(
        st.lists(
            st.sampled_from(["", " ", "x", " y ", "3"]), min_size=len(header), max_size=len(header)
        )
    )
    record = _Columns(header).record(cells)
    if any(not name and cell.strip() for name, cell in zip(header, cells, strict=True)):
        assert "has a value but its column has no name" in record.reason
    else:
        expected = from_csv_record(dict(zip(header, cells, strict=True)))
        assert record == expected and list(record) == list(expected)
        assert list(record["resident"]) == list(expected["resident"])
        assert list(record["attributes"]) == list(expected["attributes"])


def test_the_collectors_pace_is_restored_after_imports_even_overlapping_ones() -> None:
    before = gc.get_threshold()
    with _fewer_collections():
        during = gc.get_threshold()
        with _fewer_collections():
            assert gc.get_threshold() == during
        assert gc.get_threshold() == during
    assert during[0] > before[0] and gc.get_threshold() == before
