"""Ways failure events come in: the HTTP/CLI schema, Alertmanager, torchelastic error files."""

from incidentbot.ingest.schema import MAX_MESSAGE_BYTES, BatchError, EventIn, validate_batch
from incidentbot.ingest.sources import from_alertmanager
from incidentbot.ingest.torchelastic import from_torchelastic

__all__ = ["EventIn", "BatchError", "validate_batch", "MAX_MESSAGE_BYTES", "from_alertmanager", "from_torchelastic"]
