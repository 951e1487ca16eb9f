"""Muse Cloud server: Lambda handlers and the services and storage they share."""
