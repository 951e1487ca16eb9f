"""The ``muse-cloud`` command-line client and the local stack."""
