"""What the core tells a metrics backend, without knowing which one.

The core (kudos, awards), the dialog engine (turns), the scheduler and the notifier report what
they did to `Core.signals`; the server attaches an observer that turns each report into
in-process Prometheus counters (`bots.observability`). Nothing here imports a metrics library or
touches the database: a report is a method call, and with no observer attached (a CLI command,
a test) it is a loop over an empty list.

Writes are reported once they are committed, never on the attempt: callers pass the report to
`Database.after_commit`, which drops it when the transaction rolls back.
"""

from __future__ import annotations


class Observer:
    """One receiver of reports; every method does nothing unless overridden."""

    def kudos_given(self, source: str) -> None:
        """A kudos was committed; `source` is "api" or "chat"."""

    def awarded(self, source: str, count: int) -> None:
        """`count` awards were committed; `source` is the award's source (dialog, api, rule...)."""

    def turn(self, platform: str, command: str, seconds: float) -> None:
        """The dialog engine answered one chat turn in `seconds`."""

    def job_finished(self, job: str, failed: bool, seconds: float) -> None:
        """A scheduled job's run ended (a claimed run: scheduled, taken over or manual)."""

    def delivery_attempted(self, platform: str, failed: bool) -> None:
        """The notifier tried to send one announcement delivery."""


class Signals(Observer):
    """The core's reports, passed on to every attached observer (usually none or one)."""

    def __init__(self) -> None:
        self.observers: list[Observer] = []

    def attach(self, observer: Observer) -> None:
        self.observers.append(observer)

    def detach(self, observer: Observer) -> None:
        if observer in self.observers:
            self.observers.remove(observer)

    def kudos_given(self, source: str) -> None:
        for observer in self.observers:
            observer.kudos_given(source)

    def awarded(self, source: str, count: int) -> None:
        for observer in self.observers:
            observer.awarded(source, count)

    def turn(self, platform: str, command: str, seconds: float) -> None:
        for observer in self.observers:
            observer.turn(platform, command, seconds)

    def job_finished(self, job: str, failed: bool, seconds: float) -> None:
        for observer in self.observers:
            observer.job_finished(job, failed, seconds)

    def delivery_attempted(self, platform: str, failed: bool) -> None:
        for observer in self.observers:
            observer.delivery_attempted(platform, failed)
