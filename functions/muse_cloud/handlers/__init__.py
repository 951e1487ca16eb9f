"""Lambda entry points: each adapts its event to a service call."""
