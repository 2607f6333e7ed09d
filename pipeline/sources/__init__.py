"""Sources: find input files, cut them into read tasks, decode bytes into records."""

from pipeline.sources.decode import FORMATS, Limits, decode
from pipeline.sources.files import Discovery, ReadTask, discover, read_task
from pipeline.sources.records import Record, Rejected, Skipped, redact_position

__all__ = [
    "FORMATS", "Discovery", "Limits", "ReadTask", "Record", "Rejected", "Skipped", "decode", "discover",
    "read_task", "redact_position",
]
