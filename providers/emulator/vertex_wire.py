"""Vertex AI's own bytes (the answers themselves are Anthropic's: anthropic_wire.py).

A request over the project's quota is refused by Google's front end, not by the model, so its
429 has Google's error shape, not Anthropic's envelope: shared wire-formats notes §4 (observed,
wrapped in an array) ``[{"error": {"code": 429, "message": "Quota exceeded …", "status":
"RESOURCE_EXHAUSTED"}}]``. The quota metric names in the message follow Vertex's quota page
for partner models (per base model, per minute, per region); the notes do not list them.
"""

from __future__ import annotations

import json

JSON_CONTENT_TYPE = "application/json"
QUOTA_METRICS = {
    "requests": "online_prediction_requests_per_base_model",
    "input_tokens": "online_prediction_input_tokens_per_minute_per_base_model",
    "output_tokens": "online_prediction_output_tokens_per_minute_per_base_model",
    "tokens": "online_prediction_tokens_per_minute_per_base_model",
}


def quota_error_body(bucket: str, model: str) -> bytes:
    """The 429 RESOURCE_EXHAUSTED body for the bucket that ran out."""
    message = (f"Quota exceeded for aiplatform.googleapis.com/{QUOTA_METRICS[bucket]} with "
               f"base model: {model}. Please submit a quota increase request.")
    error = {"code": 429, "message": message, "status": "RESOURCE_EXHAUSTED"}
    return json.dumps([{"error": error}], separators=(",", ":")).encode()
