from django.urls import path

from providers import views

urlpatterns = [path("keys/", views.keys_page, name="keys")]
