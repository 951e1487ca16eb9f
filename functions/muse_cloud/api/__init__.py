"""The HTTP API's request and response shapes, and the adaptation of API Gateway events."""
