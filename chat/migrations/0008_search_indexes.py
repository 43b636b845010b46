"""Search on PostgreSQL (chat/search.py): messages carry their text's `tsvector` in a stored
generated column, `search_vector`, indexed with GIN, so that a query never computes
`to_tsvector` again on the rows it reads (the index alone, or a scan of the newest messages,
whichever the planner finds cheaper: bench/search.py); conversations' titles have a GIN index
on the same expression their query uses. The `simple` configuration: no stemming, every
language alike. SQLite has neither: its search reads with LIKE.

Adding the column rewrites the messages table once (PostgreSQL computes every row's value).
"""

from django.db import migrations

FORWARD = [
    "ALTER TABLE chat_message ADD COLUMN IF NOT EXISTS search_vector tsvector GENERATED ALWAYS "
    "AS (to_tsvector('simple'::regconfig, COALESCE(content, ''))) STORED",
    "CREATE INDEX IF NOT EXISTS chat_message_search ON chat_message USING gin (search_vector)",
    "CREATE INDEX IF NOT EXISTS chat_conversation_title_search ON chat_conversation "
    "USING gin (to_tsvector('simple'::regconfig, COALESCE(title, '')))",
]
BACKWARD = [
    "DROP INDEX IF EXISTS chat_conversation_title_search",
    "DROP INDEX IF EXISTS chat_message_search",
    "ALTER TABLE chat_message DROP COLUMN IF EXISTS search_vector",
]


def _run(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            for statement in statements:
                schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [("chat", "0007_conversations_deleted")]

    operations = [migrations.RunPython(_run(FORWARD), _run(BACKWARD))]
