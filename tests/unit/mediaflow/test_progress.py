import io

from mediaflow.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_without_an_end_reports_count_and_rate():
    progress = Progress("scanned", stream=io.StringIO())
    progress.advance(2000)
    assert progress.line(2.0) == "scanned 2,000 (1,000/s)"


def test_progress_with_a_total_shows_a_bar_and_an_eta():
    progress = Progress("rebuild", total=2000, stream=io.StringIO(), unit="events")
    progress.advance(500)
    assert progress.line(2.0, width=10) == "rebuild [##        ] 500/2,000 events  250/s  ETA 6s"


def test_progress_draws_on_a_terminal_and_keeps_or_erases_its_last_line():
    terminal = Terminal()
    clock = iter([0.0, 1.0, 2.0, 3.0]).__next__
    progress = Progress("rebuild", total=100, stream=terminal, unit="events", clock=clock)
    progress.advance(30)
    progress.update(50)  # a total summed over processes
    progress.close(keep=True)
    assert terminal.getvalue().endswith("50/100 events  17/s  ETA 3s\n")


def test_progress_stays_off_pipes_and_erases_itself_on_a_terminal():
    pipe, terminal = io.StringIO(), Terminal()
    for stream in (pipe, terminal):
        progress = Progress("scanned", stream=stream)
        progress.advance()
        progress.close()
    assert pipe.getvalue() == ""
    assert terminal.getvalue().endswith("\r\x1b[K")
