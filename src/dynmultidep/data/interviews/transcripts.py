"""The seconds in which the participant speaks, from DAIC-WOZ's transcripts.

``{id}_TRANSCRIPT.csv`` is TAB-separated with the header ``start_time stop_time
speaker value``; ``speaker`` is ``Ellie`` (the interviewer) or ``Participant``. The
interviewer's prompts follow the interview's script, which depends on the answers:
they leak the label, so a model can be restricted to the participant's turns.
E-DAIC's transcripts are speech recognition output without a speaker column, so
they cannot select the participant.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from dynmultidep.errors import DataError

TRANSCRIPT = "{id}_TRANSCRIPT.csv"
COLUMNS = ("start_time", "stop_time", "speaker", "value")
PARTICIPANT = "Participant"


def participant_seconds(data: bytes, where: Path, steps: int) -> tuple[np.ndarray, bool]:
    """``(keep (steps,) bool, has_interviewer)``: seconds that overlap a participant
    turn, and whether the transcript has interviewer lines at all. Sync markers
    (``<sync>``, ``<synch>``) are not speech."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataError(where, f"not UTF-8 text ({err.reason})") from None
    reader = csv.reader(io.StringIO(text), delimiter="\t")
    header = [name.strip() for name in next(reader, [])]
    if header[: len(COLUMNS)] != list(COLUMNS):
        raise DataError(where, f"header {' '.join(header) or '(empty)'} is not the TAB-separated "
                        f"{' '.join(COLUMNS)}")  # fmt: skip
    keep = np.zeros(steps, bool)
    interviewer = False
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        if len(row) < len(COLUMNS):
            raise DataError(where, f"line {reader.line_num}: {len(row)} fields, expected 4")
        try:
            start, stop = float(row[0]), float(row[1])
        except ValueError:
            raise DataError(where, f"line {reader.line_num}: times {row[0]!r}, {row[1]!r} are "
                            "not numbers") from None  # fmt: skip
        speaker, value = row[2].strip(), row[3].strip().lower()
        if value.startswith("<sync"):
            continue
        if speaker != PARTICIPANT:
            interviewer = True
            continue
        first, last = int(np.floor(start)), int(np.ceil(stop))
        keep[max(first, 0) : min(max(last, first + 1), steps)] = True
    return keep, interviewer
