"""Workloads: what the memory is asked to do."""

from kvsim.workloads.synthetic import ALLOC, FREE, SIZE_CLASSES, EventTrace, SyntheticWorkload

__all__ = ["ALLOC", "FREE", "SIZE_CLASSES", "EventTrace", "SyntheticWorkload"]
