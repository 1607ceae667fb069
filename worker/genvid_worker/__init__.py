"""genvid_worker: makes one preview video for one VideoGeneration, then exits.

An independent microservice run as a Kubernetes Job by the operator: it imports nothing from
the api, the operator or the dev stack, and needs neither a database nor Kubernetes
credentials, only its bucket and (for Veo) Vertex AI.

Command line (per generation)::

    python -m genvid_worker --job_id ID --prompt TEXT [--model M] [--duration_seconds 4]
        [--aspect_ratio 16:9|9:16] [--negative_prompt T] [--seed N]
        [--provider veo|synthetic] [--price_usd_per_second X] [--termination_log PATH]

Environment (per deployment, see `config.Settings`): GENVID_BUCKET (required),
STORAGE_EMULATOR_HOST, GENVID_PROVIDER, GOOGLE_CLOUD_PROJECT + GOOGLE_CLOUD_LOCATION (with
application default credentials) or GOOGLE_API_KEY, GENVID_VEO_BASE_URL, GENVID_VEO_MODEL,
GENVID_POLL_INTERVAL_SECONDS, GENVID_POLL_DEADLINE_SECONDS, GENVID_POLL_MAX_CONSECUTIVE_ERRORS,
GENVID_VEO_REQUEST_TIMEOUT_SECONDS, GENVID_UPLOAD_CHUNK_BYTES, GENVID_READ_CHUNK_BYTES,
GENVID_STORAGE_RETRY_SECONDS, GENVID_STORAGE_PROJECT.

Outputs: `previews/{job_id}/preview_{YYYYMMDDTHHMMSSZ}.mp4` (video/mp4) and
`previews/{job_id}/poster_{...}.jpg` (image/jpeg); with Veo also `previews/{job_id}/veo/...`
(Veo's own output) and `previews/{job_id}/operation.json` (the paid operation, for resuming).

Result: one JSON document (at most 4096 bytes) in the termination log, see `result`:
    {"status": "succeeded", "provider", "model", "bucket", "object", "poster_object",
     "size_bytes", "duration_seconds", "content_type", "cost_usd" (decimal string: Veo's price x
     seconds, "0" for synthetic), "operation" (the Veo operation name, or null)}
    {"status": "failed", "reason", "message", "retryable", "cost_usd": "0"}
Progress goes to stdout, one JSON object per line.

Exit codes:
    0   succeeded.
    3   permanent failure (invalid request, safety-filtered, provider timeout, bad
        configuration): the Job's podFailurePolicy fails the Job at once.
    75  retryable failure (EX_TEMPFAIL: rate limited, provider or storage unavailable,
        interrupted): the Job retries with back-off, and a Veo job resumes its operation.
"""
