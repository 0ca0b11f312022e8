"""The ``augdiff`` command line."""
