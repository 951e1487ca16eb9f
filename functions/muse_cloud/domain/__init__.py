"""The server's domain model: value types, records and name rules, with no AWS and no HTTP.

Imported by auth, storage, services and the API alike; it imports only ``muse_core``.
"""
