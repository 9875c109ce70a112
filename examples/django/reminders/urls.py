"""The example's URLs: create an appointment, read it with its reminder's status."""

from appointments import views
from django.urls import path

urlpatterns = [
    path("appointments/", views.create, name="create"),
    path("appointments/<int:pk>/", views.detail, name="detail"),
]
