"""Observability of the core, free of any metrics library or web framework.

- `signals`: what the core reports (kudos and awards committed, chat turns, job runs, delivery
  attempts) to whichever observer the server attaches (`bots.observability` counts them for
  Prometheus);
- `context`: the request, turn, platform and member a log line is about;
- `logs`: the text and JSON log formats, with secrets hidden.
"""

from rewards.observability.signals import Observer, Signals

__all__ = ["Observer", "Signals"]
