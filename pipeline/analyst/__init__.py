"""What analysts use: SQL over the pseudonymised events (``auditveil query``) and compaction of
small files (``auditveil compact``), both safe while the dataset is being written or compacted.
"""

from pipeline.analyst.compact import CompactionResult, compact_partition, partitions
from pipeline.analyst.dataset import Partition, live_files, open_events
from pipeline.analyst.query import QueryResult, render, run_query

__all__ = [
    "CompactionResult", "Partition", "QueryResult", "compact_partition", "live_files", "open_events",
    "partitions", "render", "run_query",
]
