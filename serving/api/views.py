"""The prediction protocols: native, MLflow scoring, Open Inference v2 (with Triton's model
configuration, repository index and statistics) and KServe V1.

Each view parses, calls its protocol's codec (`serving.codecs.<protocol>`) and one service, and
formats through the codec. Bodies are decoded straight from the request bytes (not through DRF's
parsers, which would build intermediate structures we throw away); the serializers below
document the shapes for OpenAPI.
"""

import time
from collections.abc import Callable
from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mlplatform.api import CachedTokenAuthentication
from mlplatform.errors import NotFoundError
from registry.models import ModelVersion
from serving import (
    enrichment,
    metrics,
    rejectionstats,
    selectors,
    services,
    shadows,
    traffic,
    trafficstats,
)
from serving.api import openapi as oa
from serving.api.bodies import request_body
from serving.codecs import binary_tensors, columns, kserve_v1, mlflow, native, open_inference
from serving.codecs.columns import DecodedRequest, PredictionResult
from serving.models import PredictionLog


def json_body(request: Request) -> Any:
    """The request body as JSON (decompressed if sent so, within the size cap: 413 beyond it),
    NaN and Infinity refused."""
    return columns.json_decode(request_body(request))


def json_response(body: dict[str, Any], *, request_id: str, code: int = 200) -> HttpResponse:
    # Bytes, not text: Django would otherwise parse the charset out of the content type on every
    # response to encode it (the encoder's output is ASCII: `ensure_ascii` is on).
    return HttpResponse(
        columns.json_encode(body),
        content_type="application/json",
        status=code,
        headers={"X-Request-ID": request_id},
    )


_JSON_RENDERER = JSONRenderer()


class ServingApi(APIView):
    """Times every request and counts it per model, version and protocol."""

    protocol = PredictionLog.Protocol.NATIVE
    # Token only, as DESIGN §4 says: these routes skip the session layers (serving/middleware.py).
    authentication_classes = [CachedTokenAuthentication]
    renderer_classes = [JSONRenderer]

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        # The protocols answer JSON whatever the Accept header says, as MLflow's and KServe's
        # servers do, so no request pays for DRF parsing its Accept header.
        return _JSON_RENDERER, _JSON_RENDERER.media_type

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        services.preload_once()  # a no-op after this process's first request
        started = time.perf_counter()
        self.started = started
        self.served: ModelVersion | None = None  # the version that predicted (for metrics)
        self.named: ModelVersion | None = None  # a version a read resolved (not a prediction)
        self.route: traffic.Route | None = None  # a prediction's target (serving/traffic.py)
        self.role = traffic.PRIMARY
        self.rows = 0
        response = super().dispatch(request, *args, **kwargs)
        served = self.served
        answered = served or self.named
        if answered is not None:
            response["X-Model-Version"] = str(answered.version)
        seconds = time.perf_counter() - started
        metrics.record_request(
            model=served.model.name if served else "",
            version=str(served.version) if served else "",
            protocol=str(self.protocol),
            status=response.status_code,
            seconds=seconds,
            rows=self.rows,
        )
        route = self.route
        if route is not None and route.alias_id is not None and served is not None:
            traffic_record(route, served, self.role, response.status_code, seconds, self.rows)
        return response

    def handle_exception(self, exc: Exception) -> Response:
        """The API's error answer; a 4xx naming a field is counted for monitoring (read before
        a protocol rewrites the body in its own shape)."""
        response = super().handle_exception(exc)
        data = response.data
        if 400 <= response.status_code < 500 and isinstance(data, dict) and data.get("field"):
            rejection_record(self, str(data["field"]))
        return response

    def resolve(
        self, *, name: str, version: int | None = None, alias: str | None = None
    ) -> traffic.Route:
        """The prediction's route; its primary is the served version until `choose` picks."""
        route = traffic.route_resolve(model_name=name, version=version, alias=alias)
        self.route = route
        self.served = route.primary
        return route

    def choose(
        self,
        request: Request,
        route: traffic.Route,
        decode: Callable[[ModelVersion], DecodedRequest],
    ) -> tuple[ModelVersion, DecodedRequest]:
        """The version that answers (the primary, or the canary for its share of routing keys)
        and the request decoded for it (`decode` decodes the body for a version)."""
        if route.canary is None:
            return route.primary, decode(route.primary)
        header = request.META.get("HTTP_X_ROUTING_KEY")
        decoded = None
        key = traffic.header_key(header)
        if key is None and route.routing_field:
            decoded = decode(route.primary)
            key = traffic.request_key(route, header, decoded)
        chosen, self.role = route.pick(key)
        self.served = chosen
        if decoded is None or chosen is not route.primary:
            decoded = decode(chosen)
        return chosen, decoded

    def predict(
        self, request: Request, *, version: ModelVersion, decoded: DecodedRequest
    ) -> tuple[PredictionResult, str]:
        """Validate, predict and (sampled) log; returns the result and the request id.
        The caller has set `self.served` as soon as it resolved the version."""
        matrix = services.request_to_matrix(version=version, decoded=decoded)
        result = services.prediction_make(version=version, matrix=matrix, outputs=decoded.outputs)
        self.rows = decoded.n_rows
        request_id = services.request_id_for(request.META.get("HTTP_X_REQUEST_ID"))
        logged = services.prediction_log(
            version=version,
            protocol=str(self.protocol),
            request_id=request_id,
            decoded=decoded,
            result=result,
            started=self.started,
            role=self.role,
            matrix=matrix,
        )
        if self.route is not None and self.route.shadows:
            shadows.submit(
                route=self.route,
                decoded=decoded,
                answer=result,
                answered_by=version,
                request_id=request_id,
                protocol=str(self.protocol),
                logged=logged,
            )
        return result, request_id


def rejection_record(view: ServingApi, field: str) -> None:
    """Count a 4xx naming `field` against the model (and the version) the request resolved; a
    request that resolved no version (an unknown version or alias of a model) counts without
    one. Requests naming no model there is are not counted."""
    served = view.served or view.named
    if served is not None:
        rejectionstats.record(model_id=served.model_id, version_id=served.pk, field=field)
        return
    name = view.kwargs.get("name") if isinstance(view.kwargs, dict) else None
    if name:
        model_id = selectors.model_id(name=str(name))
        if model_id is not None:
            rejectionstats.record(model_id=model_id, version_id=None, field=field)


def traffic_record(
    route: traffic.Route, served: ModelVersion, role: str, status: int, seconds: float, rows: int
) -> None:
    """An answer on an alias with a traffic policy: its figures, and the canary's bounds."""
    trafficstats.record(
        alias_id=route.alias_id or 0,
        version_id=served.pk,
        role=role,
        ok=200 <= status < 300,
        rows=rows,
        latency_ms=seconds * 1000.0,
    )
    traffic.outcome_record(route=route, version=served, status=status, seconds=seconds)


# --- native ---------------------------------------------------------------------------------


class NativePredictApi(ServingApi):
    @extend_schema(
        tags=["predict"],
        summary="Predict",
        description="Predictions of the model's version (the latest ready one, the one named, "
        "or the alias's) for rows sent as records (`instances`) or columns (`inputs`); "
        "`return` asks for `predict`, `predict_proba` or both.",
        parameters=[oa.ROUTING_KEY],
        request={"application/json": oa.NativePredictSerializer},
        responses={
            200: oa.NativePredictResponseSerializer,
            **oa.errors(oa.PlatformErrorSerializer, oa.PREDICT_ERRORS),
        },
    )
    def post(
        self, request: Request, name: str, version: int | None = None, alias: str | None = None
    ) -> HttpResponse:
        route = self.resolve(name=name, version=version, alias=alias)
        once = native.request(json_body(request))
        target, decoded = self.choose(request, route, lambda _: once)
        result, request_id = self.predict(request, version=target, decoded=decoded)
        body = native.response(model=target.model.name, version=target.version, result=result)
        return json_response(body, request_id=request_id)


# --- MLflow scoring protocol ---------------------------------------------------------------


class MlflowApi(ServingApi):
    protocol = PredictionLog.Protocol.MLFLOW

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)
        response.data = mlflow.error_body(response.status_code, response.data)
        return response


class MlflowInvocationsApi(MlflowApi):
    @extend_schema(
        tags=["mlflow"],
        summary="Score (MLflow)",
        description="MLflow's scoring protocol: a JSON body in one of MLflow's four formats "
        "(`dataframe_split`, `dataframe_records`, `instances`, `inputs`, with optional "
        "`params.predict_method`), a CSV file with a header row, or a Parquet file.",
        parameters=[oa.ROUTING_KEY],
        request=oa.MLFLOW_REQUEST,
        responses={
            200: oa.MlflowPredictionsSerializer,
            **oa.errors(oa.MlflowErrorSerializer, oa.PREDICT_ERRORS),
        },
    )
    def post(self, request: Request, name: str, version: int | None = None) -> HttpResponse:
        route = self.resolve(name=name, version=version)
        content_type = mlflow.content_type_parse(request.META.get("CONTENT_TYPE", ""))
        body = json_body(request) if content_type == mlflow.JSON else request_body(request)

        def decode(target: ModelVersion) -> DecodedRequest:
            # Entity keys ride along for a version with a feature service; other extra columns
            # are ignored, as MLflow ignores them.
            keep = (
                enrichment.entity_keys(feature_service_id=target.feature_service_id)
                if target.feature_service_id
                else None
            )
            signature = target.signature
            if content_type == mlflow.JSON:
                decoded = mlflow.json_request(body, signature)
            elif content_type == mlflow.CSV:
                decoded = mlflow.csv_request(body, signature)
            else:
                decoded = mlflow.parquet_request(body, signature, keep=keep or ())
            return mlflow.columns_select(decoded, signature, keep=keep)

        target, decoded = self.choose(request, route, decode)
        result, request_id = self.predict(request, version=target, decoded=decoded)
        return json_response(mlflow.response(decoded=decoded, result=result), request_id=request_id)


class MlflowPingApi(MlflowApi):
    """`ping` / `health` of one model: token-authenticated like its invocations, since the answer
    says whether the model exists (load balancers probe `/healthz`, which names nothing)."""

    @extend_schema(
        tags=["mlflow"],
        summary="Ping (MLflow)",
        description="Whether the model (or the version named) is there to answer.",
        responses={
            200: oa.MlflowPingSerializer,
            **oa.errors(oa.MlflowErrorSerializer, oa.READ_ERRORS),
        },
    )
    def get(self, request: Request, name: str, version: int | None = None) -> Response:
        target = selectors.version_resolve(model_name=name, version=version)
        self.named = target
        return Response({"status": "ok", "model": target.model.name, "version": target.version})


class MlflowVersionApi(MlflowApi):
    """MLflow's `/version`: the MLflow release whose scoring protocol this mirrors, as MLflow's
    server answers its own release (same body, same content type); the model version that
    answered is in `X-Model-Version`."""

    @extend_schema(
        tags=["mlflow"],
        summary="MLflow version",
        description="The MLflow release whose scoring protocol the route follows, as a bare "
        "string (sent with the content type application/json, as MLflow's server sends it).",
        responses={
            (200, "text/plain"): OpenApiTypes.STR,
            **oa.errors(oa.MlflowErrorSerializer, oa.READ_ERRORS),
        },
    )
    def get(self, request: Request, name: str, version: int | None = None) -> HttpResponse:
        self.named = selectors.version_resolve(model_name=name, version=version)
        return HttpResponse(mlflow.MLFLOW_VERSION, content_type="application/json")


# --- Open Inference Protocol v2 --------------------------------------------------------------


class V2Api(ServingApi):
    protocol = PredictionLog.Protocol.V2

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)
        response.data = open_inference.error_body(response.data)
        return response


class V2HealthLiveApi(V2Api):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        tags=["open-inference"],
        summary="Server live",
        description="The server is up (no token needed).",
        responses={200: oa.ServerLiveSerializer},
    )
    def get(self, request: Request) -> Response:
        return Response({"live": True})


class V2HealthReadyApi(V2HealthLiveApi):
    @extend_schema(
        tags=["open-inference"],
        summary="Server ready",
        description="The server is ready to answer (no token needed).",
        responses={200: oa.ServerReadySerializer},
    )
    def get(self, request: Request) -> Response:
        return Response({"ready": True})


class V2ServerMetadataApi(V2Api):
    @extend_schema(
        tags=["open-inference"],
        summary="Server metadata",
        description="The server's name, version and protocol extensions.",
        responses={
            200: oa.ServerMetadataSerializer,
            **oa.errors(oa.OpenInferenceErrorSerializer, (401,)),
        },
    )
    def get(self, request: Request) -> Response:
        return Response({"name": "mlplatform", "version": "1.0.0", "extensions": []})


class V2ModelMetadataApi(V2Api):
    @extend_schema(
        tags=["open-inference"],
        summary="Model metadata",
        description="The model's ready versions, input tensors (one per column) and outputs.",
        responses={
            200: oa.ModelMetadataSerializer,
            **oa.errors(oa.OpenInferenceErrorSerializer, oa.READ_ERRORS),
        },
    )
    def get(self, request: Request, name: str, version: int | None = None) -> Response:
        target = selectors.version_resolve(model_name=name, version=version)
        self.named = target
        signature = target.signature
        if version is None:
            versions = list(
                ModelVersion.objects.filter(
                    model=target.model, status=ModelVersion.Status.READY
                ).values_list("version", flat=True)
            )
        else:
            versions = [target.version]
        body = open_inference.model_metadata(
            model=target.model.name, version=target.version, versions=versions, signature=signature
        )
        return Response(body)


class V2ModelReadyApi(V2Api):
    @extend_schema(
        tags=["open-inference"],
        summary="Model ready",
        description="Whether the model (or the version named) is ready to infer.",
        responses={
            200: oa.ModelReadySerializer,
            **oa.errors(oa.OpenInferenceErrorSerializer, oa.READ_ERRORS),
        },
    )
    def get(self, request: Request, name: str, version: int | None = None) -> Response:
        target = selectors.version_resolve(model_name=name, version=version)
        self.named = target
        return Response({"name": target.model.name, "version": str(target.version), "ready": True})


class V2InferApi(V2Api):
    @extend_schema(
        tags=["open-inference"],
        summary="Infer",
        description="Open Inference Protocol v2 inference: input tensors (one per column, or "
        "one 2-D tensor of rows) in JSON, or with their values as binary data after a JSON "
        "header (application/octet-stream with the Inference-Header-Content-Length header); "
        "every output of the model unless `outputs` names some.",
        parameters=[oa.INFER_HEADER, oa.ROUTING_KEY],
        request=oa.INFER_REQUEST,
        responses={
            **oa.INFER_RESPONSES,
            **oa.errors(oa.OpenInferenceErrorSerializer, oa.PREDICT_ERRORS),
        },
    )
    def post(self, request: Request, name: str, version: int | None = None) -> HttpResponse:
        route = self.resolve(name=name, version=version)
        data = open_inference.body_decode(
            request_body(request), request.META.get("HTTP_INFERENCE_HEADER_CONTENT_LENGTH")
        )
        infer_ids: list[Any] = []

        def decode(target: ModelVersion) -> DecodedRequest:
            decoded, infer_id = open_inference.request(data, target.signature)
            infer_ids.append(infer_id)
            return decoded

        target, decoded = self.choose(request, route, decode)
        infer_id = infer_ids[-1]
        binary = open_inference.binary_outputs(data, decoded.outputs)
        result, request_id = self.predict(request, version=target, decoded=decoded)
        body = open_inference.response(
            model=target.model.name,
            version=target.version,
            signature=target.signature,
            decoded=decoded,
            infer_id=infer_id,
            result=result,
        )
        encoded = binary_tensors.outputs_encode(body, binary) if binary else None
        if encoded is None:
            return json_response(body, request_id=request_id)
        content, header_length = encoded
        return HttpResponse(
            content,
            content_type="application/octet-stream",
            headers={"X-Request-ID": request_id, binary_tensors.HEADER: str(header_length)},
        )


class V2ModelConfigApi(V2Api):
    """Triton's model configuration, as `tritonclient`'s `get_model_config` reads it."""

    @extend_schema(
        tags=["open-inference"],
        summary="Model configuration (Triton)",
        description="Triton's model configuration of the model (or the version named).",
        responses={
            200: oa.ModelConfigSerializer,
            **oa.errors(oa.OpenInferenceErrorSerializer, oa.READ_ERRORS),
        },
    )
    def get(self, request: Request, name: str, version: int | None = None) -> Response:
        target = selectors.version_resolve(model_name=name, version=version)
        self.named = target
        return Response(
            open_inference.model_config(
                model=target.model.name, version=target.version, signature=target.signature
            )
        )


class V2RepositoryIndexApi(V2Api):
    """Triton's repository index: the models the caller may read, each with the version that
    answers it (state READY) or none (UNAVAILABLE). `{"ready": true}` keeps the ready ones."""

    @extend_schema(
        tags=["open-inference"],
        summary="Repository index (Triton)",
        description="The models you may read, each with the version that answers it (state "
        "READY) or none (UNAVAILABLE); `ready: true` lists only the ready ones.",
        request={"application/json": oa.RepositoryIndexQuerySerializer},
        responses={
            200: oa.RepositoryModelSerializer(many=True),
            **oa.errors(oa.OpenInferenceErrorSerializer, (400, 401)),
        },
    )
    def post(self, request: Request) -> Response:
        raw = request_body(request)
        options = columns.json_decode(raw) if raw.strip() else {}
        ready_only = isinstance(options, dict) and options.get("ready") is True
        entries = []
        for model, version in selectors.models_serving(user=request.user):
            if version is None and ready_only:
                continue
            reason = "" if version is not None else "no ready version"
            entries.append(
                open_inference.repository_entry(model=model, version=version, reason=reason)
            )
        return Response(entries)


class V2ModelStatsApi(V2Api):
    """Triton's inference statistics of one model (and version), from this process's counters
    (each web process counts its own requests)."""

    @extend_schema(
        tags=["open-inference"],
        summary="Model statistics (Triton)",
        description="Triton's inference statistics of the model (or the version named), as "
        "counted by the server process that answers.",
        responses={
            200: oa.ModelStatisticsSerializer,
            **oa.errors(oa.OpenInferenceErrorSerializer, oa.READ_ERRORS),
        },
    )
    def get(self, request: Request, name: str, version: int | None = None) -> Response:
        target = selectors.version_resolve(model_name=name, version=version)
        self.named = target
        figures = metrics.version_figures(
            model=target.model.name, version=None if version is None else str(version)
        )
        return Response(open_inference.model_stats(figures=figures))


class V2StatsApi(V2Api):
    """Triton's inference statistics of every model the caller may read (this process's)."""

    @extend_schema(
        tags=["open-inference"],
        operation_id="v2_models_stats_all",
        summary="Statistics of every model (Triton)",
        description="Triton's inference statistics of every model you may read, as counted by "
        "the server process that answers.",
        responses={
            200: oa.ModelStatisticsSerializer,
            **oa.errors(oa.OpenInferenceErrorSerializer, (401,)),
        },
    )
    def get(self, request: Request) -> Response:
        visible = {model for model, _ in selectors.models_serving(user=request.user)}
        figures = [item for item in metrics.version_figures() if item["name"] in visible]
        return Response(open_inference.model_stats(figures=figures))


# --- KServe V1 --------------------------------------------------------------------------------


class V1Api(V2Api):
    """KServe's V1 protocol: errors are `{"error": ...}`, as for v2."""

    protocol = PredictionLog.Protocol.V1


class V1ModelListApi(V1Api):
    @extend_schema(
        tags=["kserve-v1"],
        operation_id="v1_models_list",
        summary="Models (KServe V1)",
        description="The names of the models you may read.",
        responses={
            200: oa.V1ModelListSerializer,
            **oa.errors(oa.OpenInferenceErrorSerializer, (401,)),
        },
    )
    def get(self, request: Request) -> Response:
        models = [model for model, version in selectors.models_serving(user=request.user)]
        return Response({"models": models})


class V1ModelReadyApi(V1Api):
    """`{"name", "ready": true}`; a model without a ready version answers 503 with
    `"ready": false`, as KServe's model server does."""

    @extend_schema(
        tags=["kserve-v1"],
        summary="Model ready (KServe V1)",
        description="Whether the model has a ready version (503 with `ready: false` if not).",
        responses={
            200: oa.V1ModelReadySerializer,
            503: OpenApiResponse(oa.V1ModelReadySerializer, description="No ready version."),
            **oa.errors(oa.OpenInferenceErrorSerializer, oa.READ_ERRORS),
        },
    )
    def get(self, request: Request, name: str) -> Response:
        try:
            target = selectors.version_resolve(model_name=name)
        except NotFoundError:
            if not selectors.model_exists(name=name):
                raise
            return Response(
                kserve_v1.model_ready(model=name, ready=False),
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
            )
        self.named = target
        return Response(kserve_v1.model_ready(model=target.model.name, ready=True))


class V1PredictApi(V1Api):
    @extend_schema(
        tags=["kserve-v1"],
        operation_id="v1_models_predict",
        summary="Predict (KServe V1)",
        description="KServe's V1 protocol: `instances` as records or rows in, `predictions` out.",
        parameters=[oa.ROUTING_KEY],
        request={"application/json": oa.V1PredictSerializer},
        responses={
            200: oa.V1PredictionsSerializer,
            **oa.errors(oa.OpenInferenceErrorSerializer, oa.PREDICT_ERRORS),
        },
    )
    def post(self, request: Request, name: str) -> HttpResponse:
        route = self.resolve(name=name)
        data = json_body(request)
        target, decoded = self.choose(
            request, route, lambda chosen: kserve_v1.request(data, chosen.signature)
        )
        result, request_id = self.predict(request, version=target, decoded=decoded)
        return json_response(kserve_v1.response(result), request_id=request_id)


# --- unknown paths under the protocols' prefixes ------------------------------------------


class _UnknownPathApi(APIView):
    """Any path under a protocol's prefix that is no route: a JSON 404 in the protocol's error
    shape, whatever the method (never Django's HTML page)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    renderer_classes = [JSONRenderer]
    schema = None  # not an operation: left out of the OpenAPI description

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        return _JSON_RENDERER, _JSON_RENDERER.media_type

    def error(self, message: str) -> dict[str, Any]:
        return {"error": message}

    def not_found(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        message = f"No such route: {request.method} {request.path}."
        return Response(self.error(message), status=status.HTTP_404_NOT_FOUND)

    get = post = put = patch = delete = head = options = not_found


class UnknownOpenInferencePathApi(_UnknownPathApi):
    """Under /v1/ and /v2: `{"error": ...}`."""


class UnknownMlflowPathApi(_UnknownPathApi):
    """Under /mlflow/: MLflow's `{"error_code": "ENDPOINT_NOT_FOUND", "message": ...}`."""

    def error(self, message: str) -> dict[str, Any]:
        return {"error_code": "ENDPOINT_NOT_FOUND", "message": message}


def metrics_view(request: Any) -> HttpResponse:
    """Prometheus text exposition. It names every model and version, so it takes the scrape
    token (`MLPLATFORM_METRICS_TOKEN`, sent as a Bearer token) or a staff user's API token."""
    if not _may_scrape(request):
        return HttpResponse(
            columns.json_encode({"detail": "Send MLPLATFORM_METRICS_TOKEN or a staff API token."}),
            status=401,
            content_type="application/json",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    body, content_type = metrics.render()
    return HttpResponse(body, content_type=content_type)


def _may_scrape(request: Any) -> bool:
    import hmac

    from django.conf import settings
    from rest_framework import exceptions

    header = request.META.get("HTTP_AUTHORIZATION", "")
    expected = str(settings.MLPLATFORM_METRICS_TOKEN or "")
    scheme, _, given = header.partition(" ")
    if expected and scheme.lower() == "bearer" and hmac.compare_digest(given, expected):
        return True
    try:
        found = CachedTokenAuthentication().authenticate(Request(request))
    except exceptions.APIException:  # a bad token, or one scoped to predictions only
        return False
    return bool(found and found[0].is_staff)
