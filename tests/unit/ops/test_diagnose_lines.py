from mediaflow.ops.diagnose import Check


def test_a_passing_check_is_one_line_with_a_tick():
    assert Check("broker", True, "127.0.0.1:9092").line() == "✔ broker: 127.0.0.1:9092"


def test_a_failing_check_shows_a_cross_and_what_to_do():
    line = Check(
        "bucket", False, "bucket 'x' does not exist", "run `mediaflow storage init`"
    ).line()
    assert line.splitlines() == [
        "✘ bucket: bucket 'x' does not exist",
        "    -> run `mediaflow storage init`",
    ]
