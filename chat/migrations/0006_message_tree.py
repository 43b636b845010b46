"""Messages form a tree (`parent`), the conversation remembers its current branch
(`current_leaf`), and a person's own title is kept apart from automatic ones.

Conversations from before were one line: each message follows the one before it, and the
branch ends at the last.
"""

import django.db.models.deletion
from django.db import migrations, models

BATCH = 2_000


def link_lines(apps, schema_editor):
    Message = apps.get_model("chat", "Message")
    Conversation = apps.get_model("chat", "Conversation")
    rows = Message.objects.order_by("conversation_id", "id").values_list("id", "conversation_id")
    changed, leaves = [], {}
    previous_conversation, previous_id = None, None
    for message_id, conversation_id in rows.iterator(chunk_size=BATCH):
        if conversation_id == previous_conversation:
            changed.append(Message(pk=message_id, parent_id=previous_id))
        previous_conversation, previous_id = conversation_id, message_id
        leaves[conversation_id] = message_id
        if len(changed) >= BATCH:
            Message.objects.bulk_update(changed, ["parent"])
            changed.clear()
    Message.objects.bulk_update(changed, ["parent"])
    for conversation_id, leaf_id in leaves.items():
        Conversation.objects.filter(pk=conversation_id).update(current_leaf_id=leaf_id)


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0005_unsettled_replies"),
    ]

    operations = [
        migrations.AddField(
            model_name="conversation",
            name="current_leaf",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="chat.message",
            ),
        ),
        migrations.AddField(
            model_name="conversation",
            name="title_by_person",
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name="message",
            name="parent",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="children",
                to="chat.message",
            ),
        ),
        migrations.RunPython(link_lines, migrations.RunPython.noop),
    ]
