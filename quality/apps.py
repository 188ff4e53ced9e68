from django.apps import AppConfig

from events.validation import validator_register


class QualityConfig(AppConfig):
    name = "quality"
    verbose_name = "Data quality"

    def ready(self) -> None:
        # Imported here, not at the top: these modules import models, which must wait until
        # the app registry is ready. Neither import dodges a cycle.
        from quality import tasks  # noqa: F401 - registers the tasks services enqueue by name
        from quality.validators import EventValidator

        # Ingestion validates with the stored rules on top of the schema layer.
        validator_register(EventValidator)
