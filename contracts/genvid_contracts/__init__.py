"""genvid_contracts: what the components must agree on, defined once.

The status vocabulary (`status`), the VideoGeneration resource's coordinates and types
(`resource`), the NATS JetStream stream and messages through which the operator tells the api
about transitions (`events`), and what the worker reports to the operator (`worker`). The api
and the operator import any of it; the worker only `worker`, which imports nothing but the
standard library.
"""
