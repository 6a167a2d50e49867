"""Reading CSV and NDJSON feeds: a record a physical line (or, for a quoted CSV cell holding
line breaks, a few), every line accounted for (a header, a blank line, a row or a line joined
to the row above), a broken line refused on its own and the rest still read. No I/O: byte
streams in memory, cut into chunks at awkward places."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.risk.domain.feeds import (
    MAX_LINES_IN_A_RECORD,
    Feed,
    Row,
    RowError,
    check_parsed,
    lines_of,
    parse_csv,
    parse_ndjson,
)
from shared.errors import Invalid

RECENT = (date.today() - timedelta(days=3)).isoformat()
HEADER = "type,council,given_name,family_name,postcode,address,source,observed_on,weeks,amount"


def csv_row(given: str = "Amina", address: str = '"Flat 3, 12 Romford Road"') -> str:
    return f"rent_arrears,E09000025,{given},Okafor,E15 4HT,{address},newham-rent,{RECENT},3,420"


def ndjson_row(given: str = "Grace") -> str:
    return json.dumps(
        {
            "type": "job_loss",
            "council": "E09000025",
            "source": "dwp-feed",
            "observed_on": RECENT,
            "resident": {"given_name": given, "family_name": "Mensah", "postcode": "E8 1DY"},
        }
    )


@dataclass
class Read:
    feed: Feed
    rows: dict[int, Row]  # by line
    refused: dict[int, list[RowError]]  # by line

    @property
    def names(self) -> list[str]:
        return [row.signal.resident.given_name for row in self.rows.values()]

    def reason(self, line: int) -> str:
        (error,) = self.refused[line]
        assert error.field == "row"
        return error.reason


async def read(body: bytes, fmt: str = "csv", chunk_size: int = 7) -> Read:
    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), chunk_size):
            yield body[start : start + chunk_size]

    lines = lines_of(chunks())
    feed = parse_csv(lines) if fmt == "csv" else parse_ndjson(lines)
    rows: dict[int, Row] = {}
    refused: dict[int, list[RowError]] = {}
    async for line, raw in feed:
        checked = check_parsed(line, raw)
        assert line not in rows and line not in refused  # each line is one row at most
        if isinstance(checked, Row):
            rows[line] = checked
        else:
            refused[line] = checked
    # Every physical line is accounted for: a header or blank line, a row read, or a line
    # joined to the row above it (a quoted cell holding a line break).
    physical = body.count(b"\n") + (not body.endswith(b"\n"))
    assert feed.lines_read == physical
    assert feed.lines_read == feed.lines_skipped + feed.lines_joined + len(rows) + len(refused)
    return Read(feed, rows, refused)


def accounting(result: Read) -> tuple[int, int, int]:
    return result.feed.lines_read, result.feed.lines_skipped, result.feed.lines_joined


def csv_file(*lines: str, end: str = "\n") -> bytes:
    return (end.join([HEADER, *lines]) + end).encode()


NINE = [f"Person{n}" for n in range(1, 10)]


async def test_an_unclosed_quote_mid_file_refuses_that_line_only() -> None:
    # The file: nine data rows, the fifth with a quote never closed. Before, the
    # reader ran on to the end of the file looking for the closing quote: rows_read 6.
    rows = [csv_row(name) for name in NINE]
    rows[4] = csv_row(NINE[4], address='"Flat 3, 12 Romford Road')
    result = await read(csv_file(*rows))
    assert list(result.refused) == [6]  # the header is line 1
    assert "quoted cell is not closed" in result.reason(6)
    assert result.names == NINE[:4] + NINE[5:]
    assert list(result.rows) == [2, 3, 4, 5, 7, 8, 9, 10]
    assert "the file ends before its quotes balance" in result.reason(6)
    assert accounting(result) == (10, 1, 0)


@pytest.mark.parametrize("end", ["\n", ""], ids=["final-newline", "no-final-newline"])
async def test_an_unclosed_quote_on_the_last_line_is_refused_not_dropped(end: str) -> None:
    body = csv_file(csv_row("Amina"), csv_row("Tomasz"), csv_row("Dee", address='"Flat 3'))
    result = await read(body[:-1] + end.encode())
    assert result.names == ["Amina", "Tomasz"]
    assert list(result.refused) == [4]
    assert result.reason(4) == (
        "a quoted cell is not closed on this line: the file ends before its quotes balance"
    )
    assert accounting(result) == (4, 1, 0)


@pytest.mark.parametrize("end", ["\n", "\r\n"], ids=["lf", "crlf"])
async def test_a_quoted_cell_may_hold_line_breaks(end: str) -> None:
    two = csv_row("Tomasz", address='"Flat 3, 12 Romford Road\nStratford"')  # lines 3-4
    three = csv_row("Dee", address='"Flat 3\n12 Romford Road\nStratford"')  # lines 5-7
    blank = csv_row("Zoë", address='"The Grange\n\nE15"')  # lines 8-10, a blank one inside
    body = csv_file(csv_row("Amina"), two, three, blank, csv_row("Łukasz")).replace(
        b"\n", end.encode()
    )
    result = await read(body, chunk_size=3)
    assert result.refused == {}
    assert result.names == ["Amina", "Tomasz", "Dee", "Zoë", "Łukasz"]
    assert list(result.rows) == [2, 3, 5, 8, 11]  # each row's first line
    addresses = [row.signal.resident.address for row in result.rows.values()]
    assert addresses[1:4] == [  # the line break kept inside the cell, \n for CRLF files too
        "Flat 3, 12 Romford Road\nStratford",
        "Flat 3\n12 Romford Road\nStratford",
        "The Grange\n\nE15",
    ]
    assert result.rows[3].signal.source == "newham-rent"  # the cells after the address
    assert result.rows[5].attributes == result.rows[2].attributes
    assert accounting(result) == (11, 1, 5)  # the header; 1 + 2 + 2 lines joined


async def test_a_broken_quote_then_a_record_over_two_lines_both_read_as_they_are() -> None:
    # The quote left open on line 3 first balances on line 6, but lines 3-6 read together
    # are not one record; so line 3 alone is refused and line 6 is read on its own: the
    # first line of an address over two lines.
    result = await read(
        csv_file(
            csv_row("Amina"),
            csv_row("Tomasz", address='"Flat 3'),  # line 3: never closed
            csv_row("Dee"),
            csv_row("Zoë"),
            csv_row("Łukasz", address='"Flat 3, 12 Romford Road\nStratford"'),  # lines 6-7
            csv_row("Grace"),
        )
    )
    assert list(result.refused) == [3]
    assert result.reason(3).startswith("a quoted cell is not closed on this line: ")
    assert "read with lines 4-6, where its quotes balance, it is not CSV" in result.reason(3)
    assert result.names == ["Amina", "Dee", "Zoë", "Łukasz", "Grace"]
    assert list(result.rows) == [2, 4, 5, 6, 8]
    assert result.rows[6].signal.resident.address == "Flat 3, 12 Romford Road\nStratford"
    assert accounting(result) == (8, 1, 1)


async def test_a_broken_quote_balanced_later_with_the_wrong_cells_refuses_its_line_only() -> None:
    # A stray quote on line 5 balances the one left open on line 3, and lines 3-5 parse as
    # CSV, but into 13 cells: line 3 is refused, and lines 4 and 5 are read on their own.
    stray = csv_row('Dee"')  # an odd quote, not opening a quoted cell
    result = await read(
        csv_file(
            csv_row("Amina"),
            csv_row("Tomasz", address='"Flat 3'),  # line 3
            csv_row("Zoë", address="Flat 3 Romford Road"),  # no quote
            stray,  # line 5
            csv_row("Łukasz"),
            csv_row("Grace"),
        )
    )
    assert list(result.refused) == [3, 5]
    assert result.reason(3) == (
        "a quoted cell is not closed on this line: read with lines 4-5, where its quotes "
        "balance, it has 13 cells where the header has 10"
    )
    # Line 5 on its own leaves a quote open too, which nothing after it closes.
    assert result.reason(5) == (
        "a quoted cell is not closed on this line: the file ends before its quotes balance"
    )
    assert result.names == ["Amina", "Zoë", "Łukasz", "Grace"]
    assert list(result.rows) == [2, 4, 6, 7]
    assert accounting(result) == (7, 1, 0)


async def test_a_broken_quote_on_the_line_before_the_last_is_refused_and_the_last_read() -> None:
    body = csv_file(csv_row("Amina"), csv_row("Tomasz", address='"Flat 3'), csv_row("Dee"))
    result = await read(body)
    assert result.names == ["Amina", "Dee"]
    assert list(result.refused) == [3]
    assert "the file ends before its quotes balance" in result.reason(3)
    assert accounting(result) == (4, 1, 0)


async def test_a_record_spans_at_most_the_bound_of_lines() -> None:
    def spanning(given: str, lines: int) -> str:
        address = "\n".join(f"part {n}" for n in range(1, lines + 1))
        return csv_row(given, address=f'"{address}"')

    longest = spanning("Tomasz", MAX_LINES_IN_A_RECORD)  # lines 3-12: one row
    result = await read(csv_file(csv_row("Amina"), longest, csv_row("Dee")))
    assert result.names == ["Amina", "Tomasz", "Dee"]
    assert list(result.rows) == [2, 3, 13]
    assert accounting(result) == (13, 1, MAX_LINES_IN_A_RECORD - 1)

    # One line more and the first line is refused; the next lines are read as they are.
    too_long = spanning("Tomasz", MAX_LINES_IN_A_RECORD + 1)  # lines 3-13
    good = [csv_row(name) for name in NINE]  # lines 14-22
    result = await read(csv_file(csv_row("Amina"), too_long, *good))
    assert result.reason(3) == (
        f"a quoted cell is not closed on this line: its quotes do not balance within "
        f"{MAX_LINES_IN_A_RECORD} lines"
    )
    middle = range(4, 3 + MAX_LINES_IN_A_RECORD)  # "part 2" … "part 10": one cell each
    assert all(result.reason(n) == "has 1 cells where the header has 10" for n in middle)
    # The address's last line leaves a quote open that nothing in the next lines closes.
    assert result.reason(13) == result.reason(3)
    assert result.names == ["Amina", *NINE]
    assert list(result.rows) == [2, *range(14, 23)]
    assert accounting(result) == (22, 1, 0)

    # A broken quote with many good rows after it: all of them are read.
    result = await read(csv_file(csv_row("Amina", address='"Flat 3'), *good, *good))
    assert "do not balance within" in result.reason(2)
    assert result.names == NINE + NINE
    assert accounting(result) == (20, 1, 0)


async def test_other_malformed_lines_are_refused_with_a_reason() -> None:
    result = await read(
        csv_file(
            csv_row("Amina", address='"Flat 3" Romford Road'),  # text after a closing quote
            csv_row("Tomasz") + ",extra",  # one cell too many
            "rent_arrears,E09000025",  # too few
            csv_row("Dee", address='"Flat 3, ""The Grange"""'),  # doubled quotes: fine
        )
    )
    assert result.names == ["Dee"]
    assert result.reason(2).startswith("not CSV: ")
    assert result.reason(3) == "has 11 cells where the header has 10"
    assert result.reason(4) == "has 2 cells where the header has 10"
    assert result.rows[5].signal.resident.address == 'Flat 3, "The Grange"'


async def test_crlf_line_endings_read_like_lf() -> None:
    broken = csv_row("Tomasz", address='"Flat 3')
    crlf = await read(csv_file(csv_row("Amina"), broken, csv_row("Dee"), end="\r\n"), chunk_size=1)
    lf = await read(csv_file(csv_row("Amina"), broken, csv_row("Dee")))
    assert crlf.names == lf.names == ["Amina", "Dee"]
    assert list(crlf.refused) == list(lf.refused) == [3]
    assert crlf.rows[4].signal.source == "newham-rent"
    assert crlf.rows[4].attributes == lf.rows[4].attributes


async def test_a_byte_order_mark_is_not_part_of_the_first_column() -> None:
    result = await read(b"\xef\xbb\xbf" + csv_file(csv_row("Amina")), chunk_size=2)
    assert result.names == ["Amina"]
    assert result.rows[2].signal.type.value == "rent_arrears"


async def test_blank_lines_are_counted_as_skipped_not_as_rows() -> None:
    # Blank (or whitespace-only) lines hold no record: they are not rows, read or refused,
    # but they are lines, so the line numbers of the rows after them are still the file's.
    body = f"\n{HEADER}\n{csv_row('Amina')}\n\n   \n{csv_row('Dee')}\n\r\n".encode()
    result = await read(body)
    assert result.names == ["Amina", "Dee"]
    assert list(result.rows) == [3, 6]
    assert (result.feed.lines_read, result.feed.lines_skipped) == (7, 5)  # 4 blank + header


async def test_chunk_boundaries_change_nothing() -> None:
    rows = [csv_row(name) for name in ["Zoë", "Łukasz", "Amina"]]
    rows[1] = csv_row("Łukasz", address='"Flat 3')
    body = b"\xef\xbb\xbf" + csv_file(*rows, end="\r\n")
    first = await read(body, chunk_size=len(body))
    for size in range(1, 12):
        again = await read(body, chunk_size=size)
        assert (again.names, list(again.refused)) == (first.names, list(first.refused))
    assert first.names == ["Zoë", "Amina"]


async def test_a_file_is_read_as_it_arrives() -> None:
    consumed = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal consumed
        yield f"{HEADER}\n".encode()
        while True:
            consumed += 1
            yield f"{csv_row()}\n".encode()

    async for line, _ in parse_csv(lines_of(endless())):
        assert (line, consumed) == (2, 1)  # the first row, as soon as its chunk is in
        break


async def test_a_broken_quote_reads_ahead_no_further_than_the_bound() -> None:
    # A quote that is never closed in an endless file: the line is refused once the bound
    # is reached, holding the lines after it (at most the bound's) to read them again.
    consumed = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal consumed
        yield f"{HEADER}\n{csv_row('Amina', address=chr(34) + 'Flat 3')}\n".encode()
        while True:
            consumed += 1
            yield f"{csv_row()}\n".encode()

    feed = parse_csv(lines_of(endless()))
    async for line, raw in feed:
        checked = check_parsed(line, raw)
        assert line == 2 and isinstance(checked, list) and "do not balance" in checked[0].reason
        assert consumed == MAX_LINES_IN_A_RECORD - 1
        break
    assert (await anext(feed))[0] == 3  # then the lines after it, read again


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (HEADER.replace("address", '"address'), "quoted cell is not closed"),
        (HEADER.replace("weeks", "amount"), "repeats amount"),
        (HEADER.replace("source,", ""), "has no source: a feed's first line names its columns"),
        (HEADER + ",internal_ref,Notes", "names columns no signal has: internal_ref, 1 more"),
    ],
)
async def test_a_header_that_cannot_be_read_refuses_the_file(header: str, reason: str) -> None:
    body = f"\n{header}\n{csv_row()}\n".encode()
    with pytest.raises(Invalid) as refused:
        await read(body)
    assert refused.value.field == "header"
    assert "line 2, the header row" in refused.value.reason and reason in refused.value.reason


async def test_a_file_without_its_header_is_refused_naming_no_residents_details() -> None:
    """Sent without a header, the first resident's row would be taken for one, and every
    row's refusal would name their details as columns. The file is refused instead, saying
    what a header needs, repeating nothing of that row."""
    body = f"{csv_row('Amina')}\n{csv_row('Dee')}\n".encode()
    with pytest.raises(Invalid) as refused:
        await read(body)
    assert refused.value.field == "header"
    assert "has no " in refused.value.reason
    for detail in ("Amina", "Okafor", "E15", "Romford", "newham-rent"):
        assert detail not in refused.value.reason


async def test_a_value_under_a_column_without_a_name_is_refused() -> None:
    header = HEADER + ","
    body = f"{header}\n{csv_row('Amina')},\n{csv_row('Dee')},lost?\n".encode()
    result = await read(body)
    assert result.names == ["Amina"]
    assert result.reason(3) == "cell 11 has a value but its column has no name"


async def test_a_file_not_in_utf8_is_refused_row_by_row_never_keyed_mangled() -> None:
    """Saved as Windows-1252 (as Excel saves "CSV"), "José" is not UTF-8: read with U+FFFD
    in place of the é it would be keyed alike with every name mangled there. Refused, with
    the field named; the rows that are UTF-8 are read."""
    body = f"{HEADER}\n{csv_row('Amina')}\n".encode() + f"{csv_row('José')}\n".encode("cp1252")
    result = await read(body)
    assert result.names == ["Amina"]
    ((error,),) = result.refused.values()
    assert error.field == "resident.given_name" and "is not UTF-8 at position 4" in error.reason


@pytest.mark.parametrize("zone", ["Etc/GMT+12", "Etc/GMT-14"])
async def test_today_is_londons_whatever_the_servers_zone(
    zone: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A council's "today" is London's: a signal observed on it is taken and one observed the
    next London day refused, on a server twelve hours behind or fourteen ahead (at any
    hour, one of the two zones is on another day than London)."""
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        today = datetime.now(ZoneInfo("Europe/London")).date()
        rows = [
            csv_row(name).replace(RECENT, day.isoformat())
            for name, day in (("Amina", today), ("Bo", today + timedelta(days=1)))
        ]
        result = await read(("\n".join([HEADER, *rows]) + "\n").encode())
    finally:
        monkeypatch.undo()
        time.tzset()
    assert result.names == ["Amina"]
    ((error,),) = result.refused.values()
    assert error.field == "observed_on" and "future" in error.reason


async def test_a_control_character_at_a_cells_edge_is_refused_as_in_ndjson() -> None:
    """Python's ``strip`` takes U+001F and its like for spaces: they would have gone
    unseen from the end of a cell. Spaces, Unicode's too, still go."""
    names = ["Amina\x1f", "\x0bBo", "Cy\x85", "\u00a0Di\u3000 "]
    body = "\n".join([HEADER, *(csv_row(name) for name in names)]) + "\n"
    result = await read(body.encode())
    assert result.names == ["Di"]
    assert sorted(result.refused) == [2, 3, 4]
    for (error,) in result.refused.values():
        assert error.field == "resident.given_name" and "control character" in error.reason


async def test_a_date_written_as_a_number_is_refused_not_read_as_seconds_since_1970() -> None:
    """ "0" or "00000000" for a date of birth not known would be 1 January 1970, the same
    for everyone so written; a timestamp where a date belongs is refused too."""
    header = HEADER + ",date_of_birth"
    lines = [f"{csv_row(name)},{born}" for name, born in (("Amina", "1984-03-02"), ("Bo", "0"))]
    lines += [f"{csv_row('Cy')},00000000", f"{csv_row('Di')},1704067200"]
    result = await read(("\n".join([header, *lines]) + "\n").encode())
    assert result.names == ["Amina"]
    assert sorted(result.refused) == [3, 4, 5]
    for (error,) in result.refused.values():
        assert error.field == "resident.date_of_birth" and "not a number" in error.reason


async def test_ndjson_a_line_the_parser_cannot_read_plainly_is_one_refused_row() -> None:
    renamed = ndjson_row("Amina").replace(
        '"given_name": "Amina"', '"given_name": "Amina", "given_name": "Bola"'
    )
    lines = [ndjson_row("Amina"), '{"type": ' + "9" * 5000 + "}", ndjson_row("Dee"), renamed]
    result = await read("\n".join(lines).encode(), fmt="ndjson")
    assert result.names == ["Amina", "Dee"]
    assert result.reason(4) == "not JSON we can read: names 'given_name' twice in one object"
    assert (
        result.reason(2) == f"not JSON we can read: holds a number outside the range ±{2**53 - 1}"
    )


async def test_ndjson_a_broken_line_is_one_refused_row() -> None:
    lines = [ndjson_row("Amina"), '{"type": "job_loss", "council": ', "", ndjson_row("Dee")]
    lines += ["[" * 100_000, '"a string"', ndjson_row("Zoë") + "\r", '{"unclosed": "quote}']
    result = await read("\n".join(lines).encode(), fmt="ndjson")
    assert result.names == ["Amina", "Dee", "Zoë"]
    assert list(result.rows) == [1, 4, 7]
    assert result.reason(2).startswith("not JSON: ")
    assert result.reason(5) == "not JSON we can read: nests deeper than 32 levels"
    assert result.refused[6][0].field == "row"  # JSON, but not an object
    assert result.reason(8).startswith("not JSON: ")  # the last line, no final newline
    assert (result.feed.lines_read, result.feed.lines_skipped) == (8, 1)


async def test_a_cell_breaking_the_input_policy_refuses_its_row_naming_the_field() -> None:
    nul_in_csv = csv_row("Ami\x00na")
    from_1800 = csv_row("Bola").replace(RECENT, "1800-01-01")
    nul_in_ndjson = ndjson_row("Gr\u0000ace")  # json.dumps writes it as \u0000
    csv_result = await read(csv_file(nul_in_csv, from_1800, csv_row("Chidi")))
    assert [e.field for e in csv_result.refused[2]] == ["resident.given_name"]
    assert "control character (U+0000)" in csv_result.refused[2][0].reason
    assert [e.field for e in csv_result.refused[3]] == ["observed_on"]
    assert "outside the dates" in csv_result.refused[3][0].reason
    assert csv_result.names == ["Chidi"]
    ndjson_result = await read(f"{nul_in_ndjson}\n{ndjson_row()}\n".encode(), fmt="ndjson")
    assert [e.field for e in ndjson_result.refused[1]] == ["resident.given_name"]
    assert ndjson_result.names == ["Grace"]
