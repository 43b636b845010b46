from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from chat.usage_views import person_usage, person_usage_csv, usage_csv, usage_page
from chatsite.metrics import metrics_view

urlpatterns = [
    path("", RedirectView.as_view(url="/chat/", permanent=False)),
    path("accounts/", include("chatsite.accounts")),
    path("chat/", include("chat.urls")),
    path("api/", include("chat.api_urls")),
    path("settings/", include("providers.urls")),
    path("usage/", usage_page, name="usage"),
    path("usage/usage.csv", usage_csv, name="usage-csv"),
    # An admin's view of someone's page (staff only; linked from their coin account).
    path("usage/people/<int:user_id>/", person_usage, name="person-usage"),
    path("usage/people/<int:user_id>/usage.csv", person_usage_csv, name="person-usage-csv"),
    path("admin/", admin.site.urls),
    # Prometheus metrics, for a bearer of METRICS_TOKEN (404 otherwise).
    path("metrics", metrics_view, name="metrics"),
]
