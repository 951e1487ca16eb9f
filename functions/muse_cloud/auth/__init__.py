"""Who is calling (MSign request signatures, identities) and what they may do (permissions)."""
