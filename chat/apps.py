from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "chat"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from chat import signals  # noqa: F401  (connects the receivers)
        from chatsite import connections, logs, telemetry

        logs.install()
        connections.connect()
        # Traces, if a destination is configured (OTLP, Langfuse); else nothing at all.
        telemetry.configure()
