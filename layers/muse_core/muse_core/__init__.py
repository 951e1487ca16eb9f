"""muse_core: the Muse repository format, delta mpacks and their verification.

Pure Python with no AWS SDK imports, so the same code runs in the Lambda layer,
in the client CLI and in tests.
"""
