from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "reports"
    verbose_name = "Reports"

    def ready(self) -> None:
        # Imported here, not at the top: both import models, which must wait until the app
        # registry is ready. Neither import dodges a cycle.
        from django.core import checks

        from events.selectors import event_counts_reader_register
        from events.services import person_merge_listener_register, stored_behind_listener_register
        from reports.checks import funnel_steps_check
        from reports.selectors.event_counts import event_counts
        from reports.services.people_merge import rollups_people_merge
        from reports.services.rollups import rollups_fold_stored_behind

        # Events replayed from quarantine keep their old received_at, usually behind the
        # rollups' watermark: they are folded in the transaction that stores them.
        stored_behind_listener_register(rollups_fold_stored_behind)
        # /events/stats counts from the rollups plus the raw tail, not scans of the table.
        event_counts_reader_register(event_counts)
        # A funnel the folds can count: the e-commerce steps, custom steps between them.
        checks.register(funnel_steps_check)
        # Distinct users count people: when ids merge, the folded counts follow (ADR 0015).
        person_merge_listener_register(rollups_people_merge)
