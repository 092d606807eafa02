"""What a benchmark run is doing, as it does it: the section, the job within it and
the time since the run started, one line each on the terminal (rich, to stderr, so
that the tables on stdout stay clean)::

      0:00 scan (1/7) selective scan, L 600-2048, N [16] ...
      0:41 scan (1/7)   N 16, L 2048, fwd+bwd
      1:52 scan (1/7) selective scan, L 600-2048, N [16]: 111 s
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape


class Progress:
    """Reports jobs of the sections ``sections`` (in run order) to ``console``
    (default: a rich console on stderr); ``clock`` gives seconds (tests pass their own)."""

    def __init__(
        self,
        sections: Sequence[str],
        console: Console | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ):
        self.sections = list(sections)
        self.console = console or Console(stderr=True, highlight=False)
        self.clock = clock
        self.started = clock()
        self.section: str | None = None

    def elapsed(self) -> str:
        """``m:ss`` since the run started."""
        minutes, seconds = divmod(int(self.clock() - self.started), 60)
        return f"{minutes:3d}:{seconds:02d}"

    def _where(self) -> str:
        index = self.sections.index(self.section) + 1
        return f"[bold]{escape(self.section)}[/bold] ({index}/{len(self.sections)})"

    def _line(self, text: str) -> None:
        self.console.print(f"[dim]{self.elapsed()}[/dim] {self._where()} {text}")

    @contextmanager
    def job(self, section: str, name: str) -> Iterator[None]:
        """A line when the job starts and one with its seconds when it ends."""
        if section not in self.sections:
            raise ValueError(f"unknown section {section!r}; this run has {self.sections}")
        self.section = section
        started = self.clock()
        self._line(f"{escape(name)} ...")
        yield
        self._line(f"{escape(name)}: {self.clock() - started:.0f} s")

    def note(self, text: str) -> None:
        """A step within the running job (a row of a table being measured)."""
        if self.section is None:
            raise RuntimeError("note() outside a job")
        self._line(f"  {escape(text)}")
