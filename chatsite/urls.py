from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(url="/chat/", permanent=False)),
    path("accounts/", include("chatsite.accounts")),
    path("chat/", include("chat.urls")),
    path("api/", include("chat.api_urls")),
    path("settings/", include("providers.urls")),
    path("admin/", admin.site.urls),
]
