"""Writes of the events app, one module per concern:

- `ingest`: validate, dedupe and store a batch (`event_batch_ingest`, `event_ingest`);
- `store`: the one insert into the events table (`events_insert`) and the listeners told of
  events stored behind the rollups' watermarks (`stored_behind_listener_register`);
- `quarantine`: refused events kept with their reasons, and the record of their replay;
- `retranslate`: what a replay validates (a protocol's message is translated again);
- `keys`: ingestion keys;
- `removal`: deleting a person's rows (erasure) and old rows (retention);
- `identity`: people, and the links between their ids (identify and alias calls).
- `partitions`: the events table's time partitions, created ahead and dropped whole (ADR 0021).

The names other modules use are importable from `events.services` itself.
"""

from events.services.identity import (
    people_delete,
    person_alias,
    person_identify,
    person_ids,
    person_merge_listener_register,
)
from events.services.ingest import (
    ACCEPTED,
    DUPLICATE,
    REJECTED,
    EventOutcome,
    event_batch_ingest,
    event_ingest,
    original_storable,
)
from events.services.keys import (
    CreatedKey,
    ingestion_key_create,
    ingestion_key_revoke,
    ingestion_key_rotate,
)
from events.services.partitions import (
    DroppedPartition,
    event_partitions_drop_before,
    event_partitions_ensure,
    event_partitions_maintain,
)
from events.services.quarantine import (
    IngestSource,
    QuarantineWrite,
    raw_payload_encode,
    rejected_events_lock_quarantined,
    rejected_events_replay_record,
    rejected_events_store,
    rejected_events_upsert,
    request_rejected_store,
)
from events.services.removal import (
    event_pks_of_users,
    events_delete,
    events_delete_received_before,
    original_batches_delete_received_before,
    rejected_events_delete,
    rejected_events_delete_received_before,
    rejected_pks_of_users,
)
from events.services.retranslate import (
    SHAPE_UNKNOWN,
    ReplayInput,
    Retranslated,
    protocol_shape_register,
    rejected_replay_input,
    rejected_sources_infer,
    retranslator_register,
)
from events.services.store import (
    events_insert,
    events_stored_behind_notify,
    stored_behind_listener_register,
)

__all__ = [
    "ACCEPTED",
    "DUPLICATE",
    "REJECTED",
    "SHAPE_UNKNOWN",
    "CreatedKey",
    "DroppedPartition",
    "EventOutcome",
    "IngestSource",
    "QuarantineWrite",
    "ReplayInput",
    "Retranslated",
    "event_batch_ingest",
    "event_ingest",
    "event_partitions_drop_before",
    "event_partitions_ensure",
    "event_partitions_maintain",
    "event_pks_of_users",
    "events_delete",
    "events_delete_received_before",
    "events_insert",
    "events_stored_behind_notify",
    "ingestion_key_create",
    "ingestion_key_revoke",
    "ingestion_key_rotate",
    "original_batches_delete_received_before",
    "original_storable",
    "people_delete",
    "person_alias",
    "person_identify",
    "person_ids",
    "person_merge_listener_register",
    "protocol_shape_register",
    "raw_payload_encode",
    "rejected_events_delete",
    "rejected_events_delete_received_before",
    "rejected_events_lock_quarantined",
    "rejected_events_replay_record",
    "rejected_events_store",
    "rejected_events_upsert",
    "rejected_pks_of_users",
    "rejected_replay_input",
    "rejected_sources_infer",
    "request_rejected_store",
    "retranslator_register",
    "stored_behind_listener_register",
]
