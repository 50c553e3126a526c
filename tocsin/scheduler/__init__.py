"""Durable timers: rows in the database claimed with leases, so a timer fires once
across several nodes and survives restarts. Reused by escalation (and meant for
snooze, delayed email, …): register a handler per ``kind``."""

from tocsin.scheduler.base import Clock, NewTimer, Timer, TimerStore
from tocsin.scheduler.runner import GiveUp, RetryLater, Scheduler

__all__ = ["Clock", "GiveUp", "NewTimer", "RetryLater", "Scheduler", "Timer", "TimerStore"]
