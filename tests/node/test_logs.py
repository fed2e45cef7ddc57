"""The log's lines: written whole, in order, and joined when a server's turn writes many."""

import asyncio
import contextlib
import io
import json
from collections.abc import Iterator

import structlog

from node.core import logs
from node.core.logs import WHOLE, held_lines


class Writes(io.StringIO):
    """A stderr that remembers each write it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


@contextlib.contextmanager
def stderr() -> Iterator[Writes]:
    """Within: stderr is a `Writes` (set in the test: pytest sets its own after fixtures)."""
    held_lines.flush()
    stream = Writes()
    with contextlib.redirect_stderr(stream):
        yield stream
    held_lines.flush()


def line(n: int, width: int = 300) -> str:
    text = {"event": "request", "n": n, "path": "/é" + "x" * width}
    return json.dumps(text, ensure_ascii=False) + "\n"


async def test_a_turns_lines_leave_together_at_its_end_whole_and_in_order() -> None:
    with stderr() as written:
        lines = [line(n) for n in range(40)]  # about 12 KB: more than one pipe write keeps whole
        for text in lines:
            held_lines.write(text)
        assert written.writes == []  # the turn is not over
        await asyncio.sleep(0)
        assert written.getvalue() == "".join(lines)
        assert 3 <= len(written.writes) < 10
        for write in written.writes:
            assert len(write.encode()) <= WHOLE and write.endswith("\n")
            assert all(json.loads(one)["event"] == "request" for one in write.splitlines())


async def test_a_line_longer_than_a_pipe_write_leaves_alone() -> None:
    with stderr() as written:
        long = line(1, width=WHOLE)
        held_lines.write(line(0))
        held_lines.write(long)
        held_lines.write(line(2))
        await asyncio.sleep(0)
        assert written.writes == [line(0), long, line(2)]


async def test_another_log_line_comes_after_the_held_ones() -> None:
    with stderr() as written:
        logs.configure("info")
        held_lines.write(line(0))
        structlog.get_logger().info("after_the_request")
        events = [json.loads(one)["event"] for one in written.getvalue().splitlines()]
        assert events == ["request", "after_the_request"]


def test_outside_an_event_loop_a_line_is_written_at_once() -> None:
    with stderr() as written:
        held_lines.write(line(0))
        assert written.writes == [line(0)]


def test_lines_held_for_a_loop_that_ended_are_written_before_the_next_loops() -> None:
    with stderr() as written:

        async def write(n: int) -> None:
            held_lines.write(line(n))

        loop = asyncio.new_event_loop()
        loop.run_until_complete(write(0))  # the loop stops before the turn's end is reached
        loop.close()
        asyncio.run(write(1))
        assert written.getvalue() == line(0) + line(1)
