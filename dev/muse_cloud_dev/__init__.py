"""Muse Cloud on one machine: the local stack (moto, the functions in worker processes, the SQS
event source), the template-driven provisioning and the demo. Not needed by the client."""
