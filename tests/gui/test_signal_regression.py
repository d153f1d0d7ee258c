"""PySide6 6.12.0 on CPython 3.11 leaks a reference to True per signal emission into Python and
aborts with "Fatal Python error: bool_dealloc" after 1,000–2,000 emissions. The pin in
pyproject.toml keeps 6.12 away from 3.11; this test fails (the subprocess aborts) if it returns."""

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import os, sys
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QCoreApplication, QObject, Signal

    class Emitter(QObject):
        changed = Signal(bool)
        progressed = Signal(int, int)

    app = QCoreApplication([])
    emitter = Emitter()
    seen = []
    emitter.changed.connect(lambda value: seen.append(value))
    emitter.progressed.connect(lambda done, total: seen.append(done <= total))
    before = sys.getrefcount(True)
    for index in range(10_000):
        emitter.changed.emit(index % 2 == 0)
        emitter.progressed.emit(index, 10_000)
    assert len(seen) == 20_000, len(seen)
    assert seen.count(True) == 15_000, seen.count(True)
    seen.clear()
    after = sys.getrefcount(True)
    print("refcount-drift", before - after)
    """
)


def test_ten_thousand_emissions_into_python_slots_survive() -> None:
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    drift = int(result.stdout.split()[-1])
    # A leak of one reference per emission would show as ~20,000 here.
    assert abs(drift) < 100, f"True lost {drift} references over 20,000 emissions"
