"""genvid_contracts: what the api and the operator must agree on, defined once.

The VideoGeneration resource's coordinates and the NATS JetStream stream and messages through
which the operator tells the api about transitions. Both deployables import it; the worker
does not (it is independent of both).
"""
