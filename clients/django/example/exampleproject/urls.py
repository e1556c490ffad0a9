from django.urls import path

from shop import views

urlpatterns = [
    path("items/", views.item_list, name="item-list"),
    path("items/new", views.item_create, name="item-create"),
    path("items/<int:pk>/", views.item_detail, name="item-detail"),
    path("items/<int:pk>/bump", views.item_bump, name="item-bump"),
]
