"""The capacity ramp's pure parts: where the knee is, what the small mix holds."""

from bench.capacity import SMALL_SIZES, knee, webhooks
from mediaflow.events import MediaType
from simulator.media import MediaLibrary
from simulator.webhooks import WebhookFactory


def step(rate: float, kept_up: bool) -> dict:
    return {"rate_offered": rate, "kept_up": kept_up, "stored_per_s": rate * 0.9}


def test_the_knee_is_the_last_step_that_kept_up_before_the_first_that_did_not() -> None:
    steps = [step(4, True), step(8, True), step(12, False), step(18, True)]
    assert knee(steps)["rate_offered"] == 8  # type: ignore[index]


def test_a_ramp_whose_first_step_fell_behind_has_no_knee() -> None:
    assert knee([step(4, False)]) is None


def test_a_ramp_that_always_kept_up_has_its_knee_at_the_last_rate() -> None:
    assert knee([step(4, True), step(8, True)])["rate_offered"] == 8  # type: ignore[index]


def test_the_small_mix_is_voice_notes_and_photos_of_20_to_200_kb() -> None:
    library = MediaLibrary(3)
    factory = WebhookFactory(library, cdn_url="http://127.0.0.1:1", files_url="http://127.0.0.1:2")
    hooks = webhooks(factory, library, "small", 40)
    assert len(hooks) == 40
    media = list(library)
    assert {m.media_type for m in media} == {MediaType.AUDIO, MediaType.IMAGE}
    assert all(SMALL_SIZES[0] <= m.size <= SMALL_SIZES[1] for m in media)
