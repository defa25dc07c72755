"""The OpenAPI description of the serving protocols: their bodies and error shapes as named
components (so generated clients get typed models), and the `extend_schema` arguments the views
share. Schema only: the views decode and encode bodies through `serving.codecs`, never through
these serializers."""

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, PolymorphicProxySerializer
from rest_framework import serializers

from serving.codecs import binary_tensors, columns, mlflow

TENSOR_DATATYPES = (
    "BOOL",
    "BYTES",
    *(f"INT{n}" for n in (8, 16, 32, 64)),
    *(f"UINT{n}" for n in (8, 16, 32, 64)),
    *(f"FP{n}" for n in (16, 32, 64)),
)


def _any_list(help_text: str = "", **kwargs: Any) -> serializers.ListField:
    return serializers.ListField(child=serializers.JSONField(), help_text=help_text, **kwargs)


# (A field named `data` shadows `Serializer.data` for type checkers only: these serializers are
# never instantiated, drf-spectacular reads their declared fields.)


# --- error bodies -----------------------------------------------------------------------------


class PlatformErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What went wrong, for a person to read.")
    field = serializers.CharField(
        required=False, allow_null=True, help_text="The request field at fault, if one is."
    )
    row = serializers.IntegerField(
        required=False, allow_null=True, help_text="The row at fault (0-based), if one is."
    )


class MlflowErrorSerializer(serializers.Serializer):
    error_code = serializers.CharField(
        help_text="MLflow's error code: BAD_REQUEST, INVALID_PARAMETER_VALUE, "
        "RESOURCE_DOES_NOT_EXIST, ..."
    )
    message = serializers.CharField()
    field = serializers.CharField(required=False, allow_null=True)
    row = serializers.IntegerField(required=False, allow_null=True)


class OpenInferenceErrorSerializer(serializers.Serializer):
    error = serializers.CharField()
    field = serializers.CharField(required=False, allow_null=True)
    row = serializers.IntegerField(required=False, allow_null=True)


_REASONS = {
    400: "The body is not valid for this model (the message names the field and row).",
    401: "No token, or an unknown, expired or revoked one.",
    403: "The token may not use this model.",
    404: "No such model, version or alias (or one the token may not read).",
    409: "The version named is not ready.",
    413: "The body is larger than the platform accepts.",
    415: "A content type or encoding the route does not take.",
    503: "The model cannot answer right now.",
}
PREDICT_ERRORS = (400, 401, 403, 404, 409, 413, 415, 503)
READ_ERRORS = (401, 403, 404)


def errors(serializer: type[serializers.Serializer], codes: tuple[int, ...]) -> dict[int, Any]:
    return {code: OpenApiResponse(serializer, description=_REASONS[code]) for code in codes}


# --- native -----------------------------------------------------------------------------------


class NativePredictSerializer(serializers.Serializer):
    instances = serializers.ListField(
        child=serializers.DictField(),
        required=False,
        help_text="Records: [{column: value}, ...]. Send this or `inputs`.",
    )
    inputs = serializers.DictField(
        child=_any_list(),
        required=False,
        help_text="Columns: {column: [value, ...]}. Send this or `instances`.",
    )


# `return` is a Python keyword: the field is declared under its JSON name.
NativePredictSerializer._declared_fields["return"] = serializers.ListField(
    child=serializers.ChoiceField(choices=columns.OUTPUTS),
    required=False,
    help_text="The outputs to answer (default: predict).",
)


class NativePredictResponseSerializer(serializers.Serializer):
    model = serializers.CharField()
    version = serializers.IntegerField()
    predictions = _any_list("One prediction per row (when `predict` was asked).", required=False)
    probabilities = serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField()),
        required=False,
        help_text="One row of class probabilities per row (when `predict_proba` was asked).",
    )
    classes = _any_list("The classes the probabilities are for.", required=False)


# --- MLflow scoring protocol --------------------------------------------------------------------


# One enum component per choice set: `return` has it; the other fields naming outputs are strings.
_OUTPUT_NAMES = " or ".join(columns.OUTPUTS)


class MlflowParamsSerializer(serializers.Serializer):
    predict_method = serializers.CharField(required=False, help_text=_OUTPUT_NAMES)


class MlflowDataframeSplitSerializer(serializers.Serializer):
    columns = serializers.ListField(child=serializers.CharField(), required=False)
    data = serializers.ListField(child=_any_list(), help_text="Rows, in the order of `columns`.")  # type: ignore[assignment]
    index = _any_list(required=False)


class MlflowDataframeSplitInputSerializer(serializers.Serializer):
    dataframe_split = MlflowDataframeSplitSerializer()
    params = MlflowParamsSerializer(required=False)


class MlflowDataframeRecordsInputSerializer(serializers.Serializer):
    dataframe_records = serializers.ListField(child=serializers.DictField())
    params = MlflowParamsSerializer(required=False)


class MlflowInstancesInputSerializer(serializers.Serializer):
    instances = _any_list("Records ({column: value}) or rows ([value, ...]).")
    params = MlflowParamsSerializer(required=False)


class MlflowInputsInputSerializer(serializers.Serializer):
    inputs = serializers.JSONField(help_text="Records, rows, or columns ({column: [value, ...]}).")
    params = MlflowParamsSerializer(required=False)


MLFLOW_INPUT = PolymorphicProxySerializer(
    component_name="MlflowInvocations",
    serializers=[
        MlflowDataframeSplitInputSerializer,
        MlflowDataframeRecordsInputSerializer,
        MlflowInstancesInputSerializer,
        MlflowInputsInputSerializer,
    ],
    resource_type_field_name=None,
)


class MlflowPredictionsSerializer(serializers.Serializer):
    predictions = _any_list(
        "One prediction per row, or one row of probabilities per row for predict_proba."
    )


class MlflowPingSerializer(serializers.Serializer):
    status = serializers.CharField()
    model = serializers.CharField()
    version = serializers.IntegerField()


MLFLOW_REQUEST = {
    mlflow.JSON: MLFLOW_INPUT,
    mlflow.CSV: OpenApiTypes.STR,
    mlflow.PARQUET: OpenApiTypes.BINARY,
}


# --- Open Inference Protocol v2 -----------------------------------------------------------------


class InferInputTensorSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="A column of the model, or any name for one 2-D tensor.")
    shape = serializers.ListField(child=serializers.IntegerField(min_value=0))
    datatype = serializers.ChoiceField(choices=TENSOR_DATATYPES)
    parameters = serializers.DictField(
        required=False, help_text="`binary_data_size` when the data follows the JSON header."
    )
    data = _any_list("The values, flat or nested (row-major).", required=False)  # type: ignore[assignment]


class InferRequestedOutputSerializer(serializers.Serializer):
    name = serializers.CharField(help_text=_OUTPUT_NAMES)
    parameters = serializers.DictField(
        required=False, help_text="`binary_data: true` for this output as binary data."
    )


class InferSerializer(serializers.Serializer):
    id = serializers.CharField(required=False, help_text="Echoed in the response.")
    parameters = serializers.DictField(
        required=False, help_text="`binary_data_output: true` for every output as binary data."
    )
    inputs = InferInputTensorSerializer(many=True)
    outputs = InferRequestedOutputSerializer(
        many=True, required=False, help_text="Default: every output of the model."
    )


class InferOutputTensorSerializer(serializers.Serializer):
    name = serializers.CharField()
    shape = serializers.ListField(child=serializers.IntegerField())
    datatype = serializers.CharField()
    parameters = serializers.DictField(required=False)
    data = _any_list("Flat, row-major (absent for an output sent as binary data).", required=False)  # type: ignore[assignment]


class InferResponseSerializer(serializers.Serializer):
    model_name = serializers.CharField()
    model_version = serializers.CharField()
    id = serializers.CharField(required=False)
    parameters = serializers.DictField(required=False)
    outputs = InferOutputTensorSerializer(many=True)


class TensorMetadataSerializer(serializers.Serializer):
    name = serializers.CharField()
    datatype = serializers.CharField()
    shape = serializers.ListField(child=serializers.IntegerField())


class ModelMetadataSerializer(serializers.Serializer):
    name = serializers.CharField()
    versions = serializers.ListField(child=serializers.CharField())
    platform = serializers.CharField()
    inputs = TensorMetadataSerializer(many=True)
    outputs = TensorMetadataSerializer(many=True)
    parameters = serializers.DictField(required=False)


class ServerMetadataSerializer(serializers.Serializer):
    name = serializers.CharField()
    version = serializers.CharField()
    extensions = serializers.ListField(child=serializers.CharField())


class ServerLiveSerializer(serializers.Serializer):
    live = serializers.BooleanField()


class ServerReadySerializer(serializers.Serializer):
    ready = serializers.BooleanField()


class ModelReadySerializer(serializers.Serializer):
    name = serializers.CharField()
    version = serializers.CharField(required=False)
    ready = serializers.BooleanField()


class ModelConfigSerializer(serializers.Serializer):
    name = serializers.CharField()
    platform = serializers.CharField()
    backend = serializers.CharField()
    max_batch_size = serializers.IntegerField()
    version_policy = serializers.DictField()
    input = serializers.ListField(child=serializers.DictField())
    output = serializers.ListField(child=serializers.DictField())
    parameters = serializers.DictField()


class RepositoryIndexQuerySerializer(serializers.Serializer):
    ready = serializers.BooleanField(required=False, help_text="Only the models ready to serve.")


class RepositoryModelSerializer(serializers.Serializer):
    name = serializers.CharField()
    version = serializers.CharField()
    state = serializers.ChoiceField(choices=["READY", "UNAVAILABLE"])
    reason = serializers.CharField()


class ModelStatisticsSerializer(serializers.Serializer):
    model_stats = serializers.ListField(child=serializers.DictField())


INFER_REQUEST = {
    "application/json": InferSerializer,
    "application/octet-stream": OpenApiTypes.BINARY,
}
_BINARY_RESPONSE = (
    "When an output was asked as binary data: the JSON response followed by the outputs' raw "
    f"values, the JSON's length in bytes in the `{binary_tensors.HEADER}` response header."
)
INFER_RESPONSES = {
    (200, "application/json"): OpenApiResponse(InferResponseSerializer, description="Outputs."),
    (200, "application/octet-stream"): OpenApiResponse(
        OpenApiTypes.BINARY, description=_BINARY_RESPONSE
    ),
}
INFER_HEADER = OpenApiParameter(
    binary_tensors.HEADER,
    OpenApiTypes.INT,
    OpenApiParameter.HEADER,
    required=False,
    description="For an application/octet-stream body (binary tensor data): the length in bytes "
    "of the JSON header that starts it; the tensors' raw values follow.",
)

ROUTING_KEY = OpenApiParameter(
    "X-Routing-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description="On a model or alias whose traffic policy has a canary: the key (a customer id, "
    "say; its first 256 characters) that keeps this caller on the same side of the split. "
    "Without it, the policy's routing field in the first row, else a random draw. The "
    "X-Model-Version response header names the version that answered.",
)


# --- KServe V1 ----------------------------------------------------------------------------------


class V1PredictSerializer(serializers.Serializer):
    instances = _any_list("Records ({column: value}) or rows ([value, ...]).")


class V1PredictionsSerializer(serializers.Serializer):
    predictions = _any_list("One prediction per instance.")


class V1ModelReadySerializer(serializers.Serializer):
    name = serializers.CharField()
    ready = serializers.BooleanField()


class V1ModelListSerializer(serializers.Serializer):
    models = serializers.ListField(child=serializers.CharField())
