from django.conf import settings
from django.urls import path

from . import views

urlpatterns = [
    path("matchmaking/ticket", views.stream_ticket, name="stream-ticket"),
    path("cancel_matchmaking", views.cancel_matchmaking, name="cancel-matchmaking"),
    path("interests/popular", views.popular_interests, name="popular-interests"),
    path("maintenance", views.maintenance, name="maintenance"),
    path("status", views.status, name="status"),
    path("metrics", views.metrics, name="metrics"),
]

if settings.DEMO_PAGE:
    urlpatterns.append(path("demo/", views.demo, name="demo"))
