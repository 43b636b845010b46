from django.urls import path

from chat import conversation_views, views

app_name = "chat"
urlpatterns = [
    path("", views.conversation_list, name="list"),
    path("new/", views.conversation_new, name="new"),
    path("<int:conversation_id>/", views.conversation_detail, name="conversation"),
    path("<int:conversation_id>/model/", views.conversation_model, name="model"),
    path("<int:conversation_id>/rename/", conversation_views.conversation_rename, name="rename"),
    path("<int:conversation_id>/tools/", conversation_views.conversation_tools, name="tools"),
    path("<int:conversation_id>/delete/", conversation_views.conversation_delete, name="delete"),
    path("<int:conversation_id>/export.md", conversation_views.export_markdown, name="export-md"),
    path("<int:conversation_id>/export.json", conversation_views.export_json, name="export-json"),
]
