"""Progress of ``agnoshm bench`` on stderr: a bar on a terminal, plain lines elsewhere.

On a TTY the last line is a bar redrawn in place with ``\\r``, e.g.
``[#####...............] 12/40 socket 1 MiB``; result lines are printed
above it.  Anywhere else (a pipe, a file, CI logs) only the result lines
appear, one per finished step, with no ``\\r`` and no bar.
"""

from __future__ import annotations

import sys

BAR_WIDTH = 20
_CLEAR = "\r\033[K"


class Progress:
    """Count finished steps out of ``total`` and report them.

    :param total: steps the run will take (latency rows, throughput, ...).
    :param stream: where to write (default ``sys.stderr``).
    """

    def __init__(self, total: int, stream=None):
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty()
        self.total = max(total, 1)
        self.done_steps = 0
        self.label = ""

    def bar(self) -> str:
        filled = BAR_WIDTH * min(self.done_steps, self.total) // self.total
        return (f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] "
                f"{self.done_steps}/{self.total} {self.label}")

    def start(self, label: str) -> None:
        """A step begins: on a terminal, show it in the bar."""
        self.label = label
        self._draw()

    def step(self, line: str | None = None) -> None:
        """A step finished: count it, print ``line`` if given."""
        self.done_steps += 1
        if line is not None:
            self.line(line)
        else:
            self._draw()

    def skip(self, steps: int) -> None:
        """Count ``steps`` that will not run (a peer that failed part-way)."""
        self.done_steps += max(steps, 0)
        self._draw()

    def line(self, text: str) -> None:
        """Print a line (above the bar on a terminal)."""
        if self.tty:
            self.stream.write(f"{_CLEAR}{text}\n{self.bar()}")
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def finish(self) -> None:
        """Remove the bar (on a terminal) so that the report starts on a clean line."""
        if self.tty:
            self.stream.write(_CLEAR)
            self.stream.flush()

    def _draw(self) -> None:
        if self.tty:
            self.stream.write(_CLEAR + self.bar())
            self.stream.flush()
