"""Object storage: locations (local or s3://), CloudTrail exports in S3, the input manifest,
and the jurisdiction guard for destinations.

* :mod:`.fs` — one interface over local paths and ``s3://`` URIs; atomic writes, retries;
* :mod:`.s3_exports` — list and read ``AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/``;
* :mod:`.manifest` — which inputs already have durable output (incremental runs);
* :mod:`.jurisdiction` — refuse non-EU regions, flag US-headquartered providers.
"""

from pipeline.storage.fs import Location, resolve
from pipeline.storage.jurisdiction import check_destination
from pipeline.storage.manifest import Manifest, mark_done
from pipeline.storage.s3_exports import ExportListing, ExportObject, expand_s3_inputs, read_object

__all__ = [
    "ExportListing", "ExportObject", "Location", "Manifest", "check_destination", "expand_s3_inputs",
    "mark_done", "read_object", "resolve",
]
