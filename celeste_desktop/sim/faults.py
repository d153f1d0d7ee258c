"""Fault injection shared by the simulators: scripted faults for tests, seeded random ones for soaks.

A ``FaultPlan`` is shared by all simulated services, as one satellite link is shared by all the
app's traffic. Faults are chosen per request by service name (``entra``, ``graph``,
``download``, ``storage``, ``rest``) or ``*`` for all.

Text form (``--faults SPEC``), items separated by ``;``:

    seed=42                      seed of the random faults (deterministic soaks)
    link=2mbit/600ms             a shared link: rate each way and round-trip time
    reset_every=50MB             on average one connection reset per that many bytes sent
    token_lifetime=120           access tokens expire after that many seconds
    graph:429=0.05/2             5 % of Graph requests answer 429 with Retry-After: 2
    storage:503=0.02/1           2 % of Storage requests answer 503 with Retry-After: 1
    *:500=0.01                   1 % of all requests answer 500
    download:reset=0.05          5 % of downloads are cut mid-body (after a random 1..64 KiB)
    rest:malformed=0.01          1 % of PostgREST replies are truncated JSON
    graph:delay=0.1/2            10 % of Graph requests stall 2 s
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from dataclasses import dataclass, field
from random import Random

KINDS = ("429", "503", "500", "reset", "malformed", "delay")
SERVICES = ("entra", "graph", "download", "storage", "rest", "*")


@dataclass
class Fault:
    """One fault to apply to one request."""

    kind: str
    retry_after: int | None = None
    reset_after: int | None = None
    seconds: float = 0.0


@dataclass
class _Scripted:
    fault: Fault
    service: str
    method: str | None
    path: re.Pattern[str] | None
    remaining: int


@dataclass
class _Random:
    service: str
    kind: str
    probability: float
    arg: float | None


class LinkShaper:
    """A shared link: bytes/s each way and a round-trip time, as a satellite profile needs."""

    def __init__(self, rate_bytes_per_s: float | None, rtt_s: float = 0.0) -> None:
        self.rate = rate_bytes_per_s
        self.rtt = rtt_s
        self._next_up = 0.0
        self._next_down = 0.0

    async def connect_delay(self, *, tls: bool) -> None:
        if self.rtt:
            await asyncio.sleep(self.rtt * (2 if tls else 1))

    async def request_delay(self) -> None:
        if self.rtt:
            await asyncio.sleep(self.rtt)

    async def upstream(self, nbytes: int) -> None:
        self._next_up = await self._pace(self._next_up, nbytes)

    async def downstream(self, nbytes: int) -> None:
        self._next_down = await self._pace(self._next_down, nbytes)

    async def _pace(self, next_free: float, nbytes: int) -> float:
        if not self.rate:
            return next_free
        now = time.monotonic()
        start = max(now, next_free)
        done = start + nbytes / self.rate
        wait = done - now
        if wait > 0.002:
            await asyncio.sleep(wait)
        return done


@dataclass
class FaultPlan:
    """Which faults to inject. Thread-safe: tests script it from their own thread."""

    seed: int | None = None
    link: LinkShaper | None = None
    reset_every_bytes: float | None = None
    token_lifetime: int | None = None
    _scripted: list[_Scripted] = field(default_factory=list)
    _random: list[_Random] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    injected: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._rng = Random(self.seed)
        self._reset_countdown = self._draw_reset()

    # -- scripting -------------------------------------------------------------------------

    def script(
        self,
        service: str,
        kind: str,
        *,
        times: int = 1,
        method: str | None = None,
        path: str | None = None,
        retry_after: int | None = None,
        reset_after: int | None = None,
        seconds: float = 0.0,
    ) -> None:
        """Inject ``kind`` into the next ``times`` matching requests of ``service``."""
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(KINDS)}")
        fault = Fault(kind, retry_after=retry_after, reset_after=reset_after, seconds=seconds)
        with self._lock:
            self._scripted.append(_Scripted(fault, service, method, re.compile(path) if path else None, times))

    def add_random(self, service: str, kind: str, probability: float, arg: float | None = None) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(KINDS)}")
        with self._lock:
            self._random.append(_Random(service, kind, probability, arg))

    def clear(self) -> None:
        with self._lock:
            self._scripted.clear()
            self._random.clear()
            self.reset_every_bytes = None
            self.link = None

    # -- used by the servers ----------------------------------------------------------------

    def pick(self, service: str, method: str, path: str) -> Fault | None:
        with self._lock:
            for item in self._scripted:
                if item.remaining <= 0 or item.service not in (service, "*"):
                    continue
                if item.method and item.method != method:
                    continue
                if item.path and not item.path.search(path):
                    continue
                item.remaining -= 1
                self.injected.append((service, item.fault.kind))
                return item.fault
            self._scripted = [s for s in self._scripted if s.remaining > 0]
            for rule in self._random:
                if rule.service not in (service, "*"):
                    continue
                if self._rng.random() >= rule.probability:
                    continue
                self.injected.append((service, rule.kind))
                return self._random_fault(rule)
        return None

    def _random_fault(self, rule: _Random) -> Fault:
        if rule.kind in ("429", "503"):
            return Fault(rule.kind, retry_after=int(rule.arg) if rule.arg is not None else None)
        if rule.kind == "reset":
            return Fault("reset", reset_after=self._rng.randint(1024, 64 * 1024))
        if rule.kind == "delay":
            return Fault("delay", seconds=rule.arg or 1.0)
        return Fault(rule.kind)

    def _draw_reset(self) -> float:
        if not self.reset_every_bytes:
            return float("inf")
        return self._rng.expovariate(1.0 / self.reset_every_bytes)

    def random_reset(self, nbytes: int) -> int | None:
        """Count ``nbytes`` about to be sent; when a random connection reset (``reset_every``)
        falls inside them, how many of them go out before it, else None."""
        if not self.reset_every_bytes:
            return None
        with self._lock:
            if self._reset_countdown == float("inf"):
                self._reset_countdown = self._draw_reset()
            if self._reset_countdown > nbytes:
                self._reset_countdown -= nbytes
                return None
            cut = max(0, int(self._reset_countdown))
            self._reset_countdown = self._draw_reset()
            self.injected.append(("*", "reset"))
            return cut


_SIZE = re.compile(r"^(?P<num>[0-9.]+)\s*(?P<unit>[a-zA-Z]*)$")
_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "kbit": 125,
    "mbit": 125_000,
    "gbit": 125_000_000,
}


def parse_size(text: str) -> float:
    """``2mbit`` → 250000.0 bytes; ``50MB`` → 5e7; ``1MiB`` → 1048576."""
    match = _SIZE.match(text.strip())
    unit = match.group("unit").lower() if match else None
    if not match or unit not in _UNITS:
        raise ValueError(f"not a size: {text!r} (examples: 2mbit, 50MB, 1MiB)")
    return float(match.group("num")) * _UNITS[unit]


def parse_duration(text: str) -> float:
    text = text.strip().lower()
    if text.endswith("ms"):
        return float(text[:-2]) / 1000
    if text.endswith("s"):
        return float(text[:-1])
    return float(text)


def parse_spec(spec: str) -> FaultPlan:
    """Parse the ``--faults`` text form described in the module docstring."""
    items = [item.strip() for item in spec.split(";") if item.strip()]
    settings: dict[str, str] = {}
    randoms: list[tuple[str, str, float, float | None]] = []
    for item in items:
        if "=" not in item:
            raise ValueError(f"fault item {item!r} needs '=': see `python -m celeste_desktop.sim --help`")
        key, value = item.split("=", 1)
        key = key.strip()
        if key in ("seed", "link", "reset_every", "token_lifetime"):
            settings[key] = value
            continue
        service, _, kind = key.rpartition(":")
        service = service or "*"
        if service not in SERVICES or kind not in KINDS:
            raise ValueError(
                f"fault item {item!r}: service must be one of {', '.join(SERVICES)} and kind one of {', '.join(KINDS)}"
            )
        prob_text, _, arg_text = value.partition("/")
        probability = float(prob_text)
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"fault item {item!r}: probability must be between 0 and 1")
        randoms.append((service, kind, probability, parse_duration(arg_text) if arg_text else None))
    plan = FaultPlan(seed=int(settings["seed"]) if "seed" in settings else None)
    if "link" in settings:
        rate_text, _, rtt_text = settings["link"].partition("/")
        plan.link = LinkShaper(parse_size(rate_text), parse_duration(rtt_text) if rtt_text else 0.0)
    if "reset_every" in settings:
        plan.reset_every_bytes = parse_size(settings["reset_every"])
        plan._reset_countdown = plan._draw_reset()
    if "token_lifetime" in settings:
        plan.token_lifetime = int(parse_duration(settings["token_lifetime"]))
    for service, kind, probability, arg in randoms:
        plan.add_random(service, kind, probability, arg)
    return plan
