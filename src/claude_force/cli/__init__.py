"""The ``claude-force`` command line. The only package that prints."""
