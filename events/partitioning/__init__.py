"""The events table partitioned by received_at on PostgreSQL (ADR 0021).

- `bounds`: pure interval math (which partitions cover which time, what is missing);
- `catalog`: the partitions as PostgreSQL lists them (a read);
- `convert`: the conversion of a plain events table, used by the migration and by the
  `events_partitions prepare` command that does its slow parts ahead on a live system.

Creating partitions ahead and dropping old ones are writes: `events.services.partitions`.
"""
