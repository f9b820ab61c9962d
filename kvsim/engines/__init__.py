"""Engines: drive a memory model with a workload and record what happens."""

from kvsim.engines.event import STEP_FIELDS, EventEngine, EventRun

__all__ = ["STEP_FIELDS", "EventEngine", "EventRun"]
