"""Figures the reliability suite measures (cases tried and rejected, latency, counters, shutdown times),
printed in a section of their own at the end of the pytest run."""
import pytest

_FIGURES: dict[str, str] = {}


@pytest.fixture
def reliability_figures() -> dict[str, str]:
    """name -> one line of figures; every entry is printed at the end of the run."""
    return _FIGURES


def pytest_terminal_summary(terminalreporter):
    if _FIGURES:
        terminalreporter.section('reliability figures')
        for name, line in _FIGURES.items():
            terminalreporter.write_line(f'{name}: {line}')
