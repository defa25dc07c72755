"""Tokens API: a user lists, creates and revokes their own API tokens."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors, services
from accounts.models import ApiToken
from mlplatform.api import Pagination

TAGS = ["tokens"]


class TokenOutputSerializer(serializers.ModelSerializer):
    prefix = serializers.CharField(help_text="The key's first characters, to tell tokens apart.")
    models: serializers.SlugRelatedField = serializers.SlugRelatedField(
        source="predict_models", slug_field="name", many=True, read_only=True
    )
    expires = serializers.DateTimeField(source="expiry", allow_null=True)

    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "scope", "models", "created", "expires", "last_used"]


class TokenCreatedSerializer(TokenOutputSerializer):
    key = serializers.CharField(help_text="The key: shown this once, never stored.")

    class Meta(TokenOutputSerializer.Meta):
        fields = [*TokenOutputSerializer.Meta.fields, "key"]


class TokenListApi(APIView):
    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=100)
        expires_in_days = serializers.FloatField(
            required=False,
            allow_null=True,
            help_text="Lifetime; default and maximum MLPLATFORM_TOKEN_TTL_DAYS.",
        )
        no_expiry = serializers.BooleanField(
            default=False, help_text="Only where the operator set MLPLATFORM_TOKEN_TTL_DAYS=never."
        )
        scope = serializers.ChoiceField(choices=ApiToken.Scope.choices, default="full")
        models = serializers.ListField(
            child=serializers.SlugField(),
            default=list,
            help_text="With scope predict: the models the token may predict with.",
        )

    @extend_schema(tags=TAGS, responses=TokenOutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        """List your API tokens (never their keys)."""
        paginator = Pagination()
        page = paginator.paginate_queryset(selectors.token_list(user=request.user), request, self)
        return paginator.get_paginated_response(TokenOutputSerializer(page, many=True).data)

    @extend_schema(tags=TAGS, request=InputSerializer, responses={201: TokenCreatedSerializer})
    def post(self, request: Request) -> Response:
        """Create a named API token; the response holds its key, shown this once."""
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        token, key = services.token_create(
            user=request.user,
            name=data["name"],
            expires_in_days=data.get("expires_in_days"),
            no_expiry=data["no_expiry"],
            scope=data["scope"],
            predict_models=data["models"],
        )
        token.key = key  # type: ignore[attr-defined]  # for the output only
        return Response(TokenCreatedSerializer(token).data, status=status.HTTP_201_CREATED)


class TokenDetailApi(APIView):
    @extend_schema(tags=TAGS, responses=TokenOutputSerializer)
    def get(self, request: Request, token_id: int) -> Response:
        """One of your API tokens (404 for anyone else's)."""
        token = selectors.token_get(user=request.user, token_id=token_id)
        return Response(TokenOutputSerializer(token).data)

    @extend_schema(tags=TAGS, responses={204: None})
    def delete(self, request: Request, token_id: int) -> Response:
        """Revoke one of your API tokens (404 for anyone else's)."""
        services.token_revoke(user=request.user, token_id=token_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
