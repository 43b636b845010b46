from django.urls import path

from chat import views

app_name = "api"
urlpatterns = [
    path("models/", views.models_api, name="models"),
]
