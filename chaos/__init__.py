"""The chaos suite: fault families run against real servers and real worker processes (``make chaos``)."""
