"""Routes of the tracker protocols, at the paths each SDK posts to (served from the site root)."""

urlpatterns: list = []
