"""genvid_worker: makes one preview video for one VideoGeneration, then exits.

An independent microservice run as a Kubernetes Job by the operator: of GenVid it imports only
`genvid_contracts.worker` (its exit codes and the result it reports), and it needs neither a
database nor Kubernetes credentials, only its bucket and (for Veo) Vertex AI. The command line,
exit codes, result document and settings are documented once, in worker/README.md.
"""
