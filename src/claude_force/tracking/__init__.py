"""Tracking: per-task metrics (bounded, with a JSONL sink), prices and cost, the HTML report.

The tracker is in-process and cheap; the report and the ``metrics`` CLI read what the sink wrote.
"""

from claude_force.tracking.aggregate import CostLine, Costs, GroupStats, LatencyStats, Summary
from claude_force.tracking.histogram import LogHistogram
from claude_force.tracking.prices import ModelPrice, PriceTable
from claude_force.tracking.sink import JsonlSink, Record, load_records
from claude_force.tracking.tracker import PerformanceTracker

__all__ = [
    "CostLine",
    "Costs",
    "GroupStats",
    "JsonlSink",
    "LatencyStats",
    "LogHistogram",
    "ModelPrice",
    "PerformanceTracker",
    "PriceTable",
    "Record",
    "Summary",
    "load_records",
]
