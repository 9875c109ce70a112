"""Glue for other frameworks, each in its own module and imported only by the projects that use it.

``zsched.contrib.django``   settings from Django's, one lazily made scheduler, ``schedule_on_commit``
``zsched.contrib.fastapi``  mount zsched's app in a FastAPI or Starlette app with its lifespan; a dependency
``zsched.contrib.pytest``   a pytest plugin: the ``zsched_server`` fixture (``zsched.testing``) per test

Nothing is imported here, so ``import zsched`` never loads Django, FastAPI or pytest.
"""
