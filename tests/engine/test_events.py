from celeste_desktop.domain.models import ActionKind
from celeste_desktop.engine.events import (
    Coalescer,
    Event,
    FileDone,
    FileProgress,
    Paused,
    PauseReason,
    Throughput,
    ThroughputMeter,
)


def progress(item: str, done: int) -> FileProgress:
    return FileProgress("job", item, f"/{item}", "download", done, 100)


def test_progress_is_merged_to_about_ten_updates_a_second() -> None:
    seen: list[Event] = []
    coalescer = Coalescer(seen.append, interval=0.1)
    # 1,000 progress events over one second of engine time, for two files.
    for step in range(1000):
        now = step / 1000
        coalescer.emit(progress("a" if step % 2 else "b", step), now)
    coalescer.flush(1.0, force=True)
    assert 10 <= len(seen) <= 24  # ~10 flushes x up to 2 files
    last = {event.item_id: event.done for event in seen if isinstance(event, FileProgress)}
    assert last == {"a": 999, "b": 998}, "the latest progress of each file survives"


def test_state_changes_pass_at_once_and_in_order() -> None:
    seen: list[Event] = []
    coalescer = Coalescer(seen.append, interval=10.0)
    coalescer.emit(progress("a", 1), 0.0)  # flushed: first ever
    coalescer.emit(progress("a", 50), 0.01)  # held back
    coalescer.emit(progress("b", 5), 0.02)  # held back
    coalescer.emit(FileDone("job", "a", "/a", ActionKind.UPLOAD, 100), 0.03)
    coalescer.emit(Paused(PauseReason.THROTTLED, "Microsoft asked us to wait 30 s", 30), 0.04)
    kinds = [type(event).__name__ for event in seen]
    # b's pending progress is flushed before the Done; a's stale progress is dropped.
    assert kinds == ["FileProgress", "FileProgress", "FileDone", "Paused"]
    assert [e.item_id for e in seen if isinstance(e, FileProgress)] == ["a", "b"]


def test_throughput_is_smoothed_and_gives_an_eta() -> None:
    meter = ThroughputMeter(time_constant=2.0)
    now = 0.0
    for _ in range(100):  # a steady 250 kB/s link with 0.5 s samples
        meter.add(125_000, now)
        now += 0.5
    assert 240_000 < meter.rate < 260_000
    assert meter.eta(2_500_000) is not None
    assert 9 < (meter.eta(2_500_000) or 0) < 11
    assert ThroughputMeter().eta(10) is None  # no rate yet: no made-up ETA
    coalesced: list[Event] = []
    Coalescer(coalesced.append).emit(Throughput("job", 1, 2, 3, 4, 5.0, None), 0.0)
    assert isinstance(coalesced[0], Throughput)
