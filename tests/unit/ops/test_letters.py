"""What became of a dead letter, read from its media's projection row."""

import dataclasses
from datetime import timedelta

from mediaflow.media_state import MediaRow, millis
from mediaflow.ops.letters import LetterState, letter_state
from tests.support.dead_letters import CODEC, NOW, dead_letter, request

LETTER = dead_letter(CODEC.encode(request()), at=NOW)
T = millis(NOW)


def row(status: str = "dead_lettered", **times: int) -> MediaRow:
    base = MediaRow(
        media_id="m-1",
        status=status,
        status_at=T,
        status_event_id="e",
        created_at=T,
        updated_at=T,
        day="2026-05-04",
    )
    return dataclasses.replace(base, **times)


def test_a_letter_without_any_later_action_is_open():
    assert letter_state(LETTER, None) == LetterState.OPEN
    assert letter_state(LETTER, row(redriven_at=T - 60_000)) == LetterState.OPEN


def test_a_redrive_after_the_letter_marks_it_redriven_until_the_media_is_stored():
    assert letter_state(LETTER, row("redriven", redriven_at=T + 1)) == LetterState.REDRIVEN
    stored = row("stored", redriven_at=T + 1, stored_at=T + 2)
    assert letter_state(LETTER, stored) == LetterState.STORED


def test_the_newest_action_wins_between_redrive_and_dismiss():
    both = row("dismissed", redriven_at=T + 1, dismissed_at=T + 2)
    assert letter_state(LETTER, both) == LetterState.DISMISSED


def test_a_letter_written_after_the_redrive_failed_again_and_is_open():
    later = dead_letter(CODEC.encode(request()), at=NOW + timedelta(minutes=1))
    assert letter_state(later, row(redriven_at=T + 1)) == LetterState.OPEN
