"""Factories for the core models: a test names what matters to it, the factory fills in the rest
the way the platform itself would store it.

Everything a factory creates belongs to a team; unless told otherwise, that is `data`, the team
of the `user` fixture (alice), so her API client may read it.
"""

import hashlib
import io
from typing import Any

import factory
import joblib
import numpy as np
from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.core.files.base import ContentFile
from django.db.models import Max
from factory.django import DjangoModelFactory, Password
from sklearn.linear_model import LinearRegression

from features.models import DataSource, Entity, Feature, FeatureGroup, FeatureService
from jobs.models import Job
from registry import graphs
from registry.compilation import compile_or_explain
from registry.models import ModelAlias, ModelVersion, RegisteredModel
from registry.signature import signature_infer

DEFAULT_TEAM = "data"


class TeamFactory(DjangoModelFactory):
    """A team is a Django group (tenancy/)."""

    class Meta:
        model = Group
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"team-{n}")


class UserFactory(DjangoModelFactory):
    """UserFactory.create(teams=[team], apps=("registry",)): a member of `teams` holding every
    permission of the apps named."""

    class Meta:
        model = settings.AUTH_USER_MODEL
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user-{n}")
    password = Password("pw-123-abc")

    @factory.post_generation
    def teams(self: Any, create: bool, extracted: list[Group] | None, **kwargs: Any) -> None:
        if create and extracted:
            self.groups.add(*extracted)

    @factory.post_generation
    def apps(self: Any, create: bool, extracted: tuple[str, ...] | None, **kwargs: Any) -> None:
        if create and extracted:
            self.user_permissions.add(
                *Permission.objects.filter(content_type__app_label__in=extracted)
            )


def _team() -> Any:
    return factory.SubFactory(TeamFactory, name=DEFAULT_TEAM)


# --- registry -------------------------------------------------------------------------------


class RegisteredModelFactory(DjangoModelFactory):
    class Meta:
        model = RegisteredModel
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"model-{n}")
    owner = _team()


def _small_regressor() -> Any:
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(40, 3))
    return LinearRegression().fit(rows, rows @ np.array([1.0, -2.0, 0.5]) + 3)


def _next_number(model: RegisteredModel) -> int:
    return (model.versions.aggregate(last=Max("version"))["last"] or 0) + 1


class ModelVersionFactory(DjangoModelFactory):
    """A ready version of a real fitted `estimator`, stored as validation stores one: its joblib
    artifact and (when it compiles) its ONNX graph under `artifacts/<model>/<sha256>`, the
    signature inferred from it and `input_example`, and the engine that will serve it.

    The estimator is the test's own, so it is compiled here rather than in the sandbox; the
    upload pipeline itself is tested in tests/registry/.
    """

    class Meta:
        model = ModelVersion

    model = factory.SubFactory(RegisteredModelFactory)
    version = factory.LazyAttribute(lambda o: _next_number(o.model))
    estimator = factory.LazyFunction(_small_regressor)
    # The stored file, when it is not the estimator's own joblib dump (a hostile file the scan
    # would refuse, stored directly to test a wall behind it).
    artifact_bytes: bytes | None = None
    input_example: Any = None
    format = ModelVersion.Format.JOBLIB
    status = ModelVersion.Status.READY
    status_message = "Validated."

    @classmethod
    def _create(cls, model_class: type[ModelVersion], *args: Any, **kwargs: Any) -> ModelVersion:
        estimator = kwargs.pop("estimator")
        data = kwargs.pop("artifact_bytes")
        if data is None:
            buffer = io.BytesIO()
            joblib.dump(estimator, buffer)
            data = buffer.getvalue()
        example = kwargs.get("input_example")
        signature = signature_infer(estimator, input_example=example).with_trusted_types([])
        graph, compilation = compile_or_explain(
            estimator, signature, example, tolerance=settings.MLPLATFORM_ONNX_TOLERANCE
        )
        if graph:
            compilation["graph"] = graphs.graph_verify(graph)
        version = model_class(
            sha256=hashlib.sha256(data).hexdigest(),
            size_bytes=len(data),
            signature=signature,
            engine=ModelVersion.Engine.ONNX if graph else ModelVersion.Engine.PYTHON,
            compilation=compilation,
            **kwargs,
        )
        # The storage paths come from the fields' upload_to (artifact_path, graph_path), as for
        # an uploaded version; the names given here are never used.
        version.artifact.save("artifact.joblib", ContentFile(data), save=False)
        if graph:
            version.graph_sha256 = hashlib.sha256(graph).hexdigest()
            version.graph.save("graph.onnx", ContentFile(graph), save=False)
        version.save()
        return version


class ModelAliasFactory(DjangoModelFactory):
    class Meta:
        model = ModelAlias

    version = factory.SubFactory(ModelVersionFactory)
    model = factory.SelfAttribute("version.model")
    alias = "production"


# --- features -------------------------------------------------------------------------------


class EntityFactory(DjangoModelFactory):
    class Meta:
        model = Entity

    name = factory.Sequence(lambda n: f"entity-{n}")
    join_keys = factory.LazyFunction(lambda: ["customer_id"])
    owner = _team()


class DataSourceFactory(DjangoModelFactory):
    """A source read from a path in the team's storage area (sources/<team>/)."""

    class Meta:
        model = DataSource

    name = factory.Sequence(lambda n: f"source-{n}")
    kind = DataSource.Kind.STORAGE_PATH
    owner = _team()
    path = factory.LazyAttribute(lambda o: f"sources/{o.owner.name}/{o.name}.csv")


class FeatureGroupFactory(DjangoModelFactory):
    class Meta:
        model = FeatureGroup

    name = factory.Sequence(lambda n: f"group-{n}")
    owner = _team()
    entity = factory.SubFactory(EntityFactory, owner=factory.SelfAttribute("..owner"))


class FeatureFactory(DjangoModelFactory):
    class Meta:
        model = Feature

    group = factory.SubFactory(FeatureGroupFactory)
    name = factory.Sequence(lambda n: f"feature_{n}")
    dtype = Feature.Dtype.FLOAT64
    position = factory.Sequence(lambda n: n)


class FeatureServiceFactory(DjangoModelFactory):
    """FeatureServiceFactory.create(features=[...]): a service serving those features."""

    class Meta:
        model = FeatureService
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"service-{n}")
    owner = _team()

    @factory.post_generation
    def features(self: Any, create: bool, extracted: list[Feature] | None, **kwargs: Any) -> None:
        if create and extracted:
            self.features.set(extracted)


# --- jobs -----------------------------------------------------------------------------------


class JobFactory(DjangoModelFactory):
    class Meta:
        model = Job

    kind = Job.Kind.BATCH_SCORING
    status = Job.Status.QUEUED
    description = factory.Sequence(lambda n: f"job {n}")
    owner = _team()
