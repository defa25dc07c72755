"""Payloads ↔ arrays: the one decoding and encoding layer behind every prediction protocol and
batch scoring, one module per protocol.

- `columns`: what every protocol shares — the decoded request, column checks, columns or a
  batch frame → the estimator's input, predictions → JSON-safe lists, JSON bytes in and out,
  `InputError`.
- `native`: `/api/v1/models/<name>/predict` bodies.
- `mlflow`: MLflow scoring bodies (JSON formats and CSV) and its error shape.
- `open_inference`: Open Inference Protocol v2 bodies, model metadata and its error shape;
  `binary_tensors`: its binary tensor data extension, both ways.
- `kserve_v1`: KServe V1 (`/v1/models/<name>:predict`) bodies and its error shape.

Each protocol module decodes requests (`request`, or `json_request`/`csv_request`) and encodes
responses (`response`) and error bodies (`error_body`). Import the modules themselves: this
package re-exports nothing.
"""
