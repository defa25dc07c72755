"""Included at the site root: the serving protocols own these full paths."""

from django.urls import path, re_path

from serving.api import views

app_name = "serving_api"

native = views.NativePredictApi.as_view()
mlflow_invocations = views.MlflowInvocationsApi.as_view()
mlflow_ping = views.MlflowPingApi.as_view()
mlflow_version = views.MlflowVersionApi.as_view()
v2_metadata = views.V2ModelMetadataApi.as_view()
v2_ready = views.V2ModelReadyApi.as_view()
v2_infer = views.V2InferApi.as_view()
v2_config = views.V2ModelConfigApi.as_view()
v2_stats = views.V2ModelStatsApi.as_view()
unknown_v2 = views.UnknownOpenInferencePathApi.as_view()

urlpatterns = [
    path("api/v1/models/<slug:name>/predict", native, name="predict"),
    path(
        "api/v1/models/<slug:name>/versions/<int:version>/predict",
        native,
        name="predict-version",
    ),
    path("api/v1/models/<slug:name>/aliases/<slug:alias>/predict", native, name="predict-alias"),
    path("mlflow/models/<slug:name>/invocations", mlflow_invocations, name="mlflow-invocations"),
    path(
        "mlflow/models/<slug:name>/versions/<int:version>/invocations",
        mlflow_invocations,
        name="mlflow-version-invocations",
    ),
    path("mlflow/models/<slug:name>/ping", mlflow_ping, name="mlflow-ping"),
    path("mlflow/models/<slug:name>/health", mlflow_ping, name="mlflow-health"),
    path("mlflow/models/<slug:name>/versions/<int:version>/ping", mlflow_ping),
    path("mlflow/models/<slug:name>/versions/<int:version>/health", mlflow_ping),
    path("mlflow/models/<slug:name>/version", mlflow_version, name="mlflow-version"),
    path("mlflow/models/<slug:name>/versions/<int:version>/version", mlflow_version),
    path("v2", views.V2ServerMetadataApi.as_view(), name="v2-server"),
    path("v2/health/live", views.V2HealthLiveApi.as_view(), name="v2-live"),
    path("v2/health/ready", views.V2HealthReadyApi.as_view(), name="v2-ready"),
    # Before `v2/models/<name>`: Triton names the statistics of every model this way.
    path("v2/models/stats", views.V2StatsApi.as_view(), name="v2-stats"),
    path("v2/models/<slug:name>", v2_metadata, name="v2-model"),
    path("v2/models/<slug:name>/versions/<int:version>", v2_metadata, name="v2-model-version"),
    path("v2/models/<slug:name>/ready", v2_ready, name="v2-model-ready"),
    path("v2/models/<slug:name>/versions/<int:version>/ready", v2_ready),
    path("v2/models/<slug:name>/infer", v2_infer, name="v2-infer"),
    path("v2/models/<slug:name>/versions/<int:version>/infer", v2_infer, name="v2-version-infer"),
    path("v2/models/<slug:name>/config", v2_config, name="v2-model-config"),
    path("v2/models/<slug:name>/versions/<int:version>/config", v2_config),
    path("v2/models/<slug:name>/stats", v2_stats, name="v2-model-stats"),
    path("v2/models/<slug:name>/versions/<int:version>/stats", v2_stats),
    path("v2/repository/index", views.V2RepositoryIndexApi.as_view(), name="v2-repository"),
    # KServe V1 (the KServe SDK's default protocol); `:predict` is part of the last segment.
    path("v1/models", views.V1ModelListApi.as_view(), name="v1-models"),
    path("v1/models/<slug:name>", views.V1ModelReadyApi.as_view(), name="v1-model"),
    re_path(
        r"^v1/models/(?P<name>[-a-zA-Z0-9_]+):predict\Z",
        views.V1PredictApi.as_view(),
        name="v1-predict",
    ),
    path("metrics", views.metrics_view, name="metrics"),
    # Any other path under the protocols' prefixes: a JSON 404 in the protocol's error shape.
    re_path(r"^(?:v1|v2)(?:/.*)?\Z", unknown_v2, name="v2-unknown"),
    re_path(r"^mlflow(?:/.*)?\Z", views.UnknownMlflowPathApi.as_view(), name="mlflow-unknown"),
]
