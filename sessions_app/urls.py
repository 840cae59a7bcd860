from django.urls import path

from . import views

urlpatterns = [
    path("session/disconnect", views.session_disconnect, name="session-disconnect"),
    path("session/<path:user_id>", views.session_detail, name="session-detail"),
]
