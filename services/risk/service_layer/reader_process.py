"""A large feed read in a process of its own: it parses, checks and keys the rows
(``reading.read_feed``) while the API's process stores the batches it has already sent back,
so that the two halves of an import, about equal in cost, use both cores.

The API's process starts ``python -m services.risk.service_layer.reader_process`` and writes to
its standard input one frame (what to read: format, keying, batch size, submitter), then the
file's bytes as they arrive, then closes it. The reader answers on its standard output with
frames: each batch of ready rows, then the totals, or the error that stopped it. A frame is
its length (8 bytes, big-endian) and a pickle; both ends are this module, of the same
checkout. A batch crosses as columns (``_columns``), its dates as day numbers: a list of
named tuples pickles at about 12 µs a row, its columns at 3.5 (unpickled and made rows again
at the cost of the tuples'). Nothing of the feed is written anywhere else; the secret
travels through the pipe, never the command line or the environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import pickle
import sys
from collections.abc import AsyncIterator, Iterable
from datetime import date
from pathlib import Path
from typing import IO, Any

from services.risk.domain.feeds import Feed, lines_of, parse_csv, parse_ndjson
from services.risk.service_layer.reading import Keying, ReadTotals, Ready, Submitter, read_feed

_CHUNK = 1 << 20
_FRAME_HEADER = 8


async def read_elsewhere(
    body: Iterable[bytes],
    rest: AsyncIterator[bytes],
    *,
    fmt: str,
    keying: Keying,
    batch_size: int,
    submitter: Submitter,
    batches: asyncio.Queue[list[Ready] | None],
) -> ReadTotals:
    """Read a feed (``body`` already received, then ``rest`` as it arrives) in a reader
    process, putting its batches into ``batches`` (then None) as they come back; its totals.
    The reader is stopped if this is (an error, a cancelled request)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        __name__,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env=_reader_environment(),
    )
    assert process.stdin is not None and process.stdout is not None
    stdin, stdout = process.stdin, process.stdout

    async def send() -> None:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            stdin.write(_frame((fmt, keying, batch_size, submitter)))
            for chunk in body:
                stdin.write(chunk)
                await stdin.drain()
            async for chunk in rest:
                stdin.write(chunk)
                await stdin.drain()
            stdin.close()
            await stdin.wait_closed()
        # A reader that stopped early says why on its own output (received below).

    async def receive() -> ReadTotals:
        while True:
            try:
                size = int.from_bytes(await stdout.readexactly(_FRAME_HEADER), "big")
                kind, payload = pickle.loads(await stdout.readexactly(size))
            except asyncio.IncompleteReadError:
                raise RuntimeError("the feed's reader process stopped unexpectedly") from None
            if kind == "batch":
                await batches.put(_rows(payload))
            elif kind == "done":
                await batches.put(None)
                return payload
            else:
                raise _rebuilt(payload)

    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(send())
            received = group.create_task(receive())
        return received.result()
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        await process.wait()


def _reader_environment() -> dict[str, str]:
    """The API's environment, with the folder this checkout's packages are in first on the
    path: the reader imports the same code whatever folder the API was started from."""
    root = str(Path(__file__).resolve().parents[3])
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": root if not path else os.pathsep.join((root, path))}


def _frame(value: Any) -> bytes:
    payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return len(payload).to_bytes(_FRAME_HEADER, "big") + payload


_OBSERVED_ON, _EXPIRES_ON = Ready._fields.index("observed_on"), Ready._fields.index("expires_on")


def _columns(batch: list[Ready]) -> list[list[Any]]:
    """A batch as one list a field (``Ready``'s order), its dates as their ordinals."""
    if not batch:
        return []
    columns = [list(column) for column in zip(*batch, strict=True)]
    for at in (_OBSERVED_ON, _EXPIRES_ON):
        columns[at] = [day.toordinal() for day in columns[at]]
    return columns


def _rows(columns: list[list[Any]]) -> list[Ready]:
    """The batch ``_columns`` made, as it was: each day made once (a feed holds few)."""
    if not columns:
        return []
    days: dict[int, date] = {}

    def day(ordinal: int) -> date:
        found = days.get(ordinal)
        if found is None:
            found = days[ordinal] = date.fromordinal(ordinal)
        return found

    for at in (_OBSERVED_ON, _EXPIRES_ON):
        columns[at] = list(map(day, columns[at]))
    return list(map(Ready._make, zip(*columns, strict=True)))


def _rebuilt(failure: tuple[type[BaseException], tuple[Any, ...], dict[str, Any]]) -> BaseException:
    """The reader's error as raised there (``Invalid`` for a bad header answers 422 the
    same way), rebuilt from its class, arguments and attributes: not every exception's
    constructor takes back its own ``args``."""
    kind, args, attributes = failure
    error = kind.__new__(kind)
    error.args = args
    error.__dict__.update(attributes)
    return error


class _Answers:
    """The reader's side: each batch written to the API's process as soon as it is full."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out

    async def put(self, batch: list[Ready] | None) -> None:
        if batch is not None:
            self.send("batch", _columns(batch))

    def send(self, kind: str, payload: Any) -> None:
        self.out.write(_frame((kind, payload)))
        self.out.flush()


async def _chunks(source: Any) -> AsyncIterator[bytes]:
    while chunk := source.read1(_CHUNK):
        yield chunk


async def _serve(source: Any, answers: _Answers) -> None:
    size = int.from_bytes(source.read(_FRAME_HEADER), "big")
    fmt, keying, batch_size, submitter = pickle.loads(source.read(size))
    lines = lines_of(_chunks(source))
    records: Feed = parse_csv(lines) if fmt == "csv" else parse_ndjson(lines)
    try:
        totals = await read_feed(records, keying, batch_size, submitter, answers)
    except Exception as error:
        answers.send("failed", (type(error), error.args, dict(error.__dict__)))
        return
    answers.send("done", totals)


def main() -> None:
    # The answers go out on a copy of standard output; anything printed goes to stderr.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    # Millions of short-lived objects and a few batches held: collecting at the usual pace
    # would go through those batches again and again.
    gc.set_threshold(100_000, *gc.get_threshold()[1:])
    asyncio.run(_serve(sys.stdin.buffer, _Answers(out)))
    out.close()


if __name__ == "__main__":
    main()
