"""What is known to be odd in each release, by session, as the corpora's users report it.

:mod:`.prepare` lists those of the sessions it read in the prepared corpus's
``report.json`` and warns once; what it finds in the files themselves (a video that
ends early, a binary label that disagrees with its score, a session no split lists)
it reports beside them.
"""

from __future__ import annotations

KNOWN: dict[str, dict[str, str]] = {
    "daic_woz": {
        "318": "transcript times are offset from the recordings",
        "321": "transcript times are offset from the recordings",
        "341": "transcript times are offset from the recordings",
        "362": "transcript times are offset from the recordings",
        "373": "the interview was interrupted",
        "444": "the interview was interrupted",
        "451": "the transcript has no interviewer lines",
        "458": "the transcript has no interviewer lines",
        "480": "the transcript has no interviewer lines",
        "402": "the video ends about 2 minutes before the audio",
        "409": "PHQ8_Score 10 with PHQ8_Binary 0 (the released binary is kept)",
        "319": "one PHQ-8 item score is missing (the released total is kept)",
    },
    "edaic": {},
}
# DAIC-WOZ ids 300-492 that were never released
EXCLUDED = {"daic_woz": ("342", "394", "398", "460"), "edaic": ("342", "394", "398", "460")}
