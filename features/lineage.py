"""Lineage of the feature store, built for one page and drawn as inline SVG.

sources → groups → features → services → model versions → jobs (with the entity beside its
groups). Each page starts from its own object and follows the links both ways; every node is a
link to its page. Drawn on the server: labelled boxes in one column per kind, lines for edges,
no JavaScript. Jobs are only those the user may see (another team's jobs stay hidden).
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from features import selectors
from features.models import DataSource, Entity, Feature, FeatureGroup, FeatureService
from jobs.models import Job

KINDS = ("source", "entity", "group", "feature", "service", "version", "job")
HEADINGS = {
    "source": "Sources",
    "entity": "Entity",
    "group": "Groups",
    "feature": "Features",
    "service": "Services",
    "version": "Model versions",
    "job": "Jobs",
}
MAX_PER_COLUMN = 8


@dataclass(frozen=True)
class Node:
    kind: str
    key: str
    label: str
    url: str


@dataclass
class Graph:
    """Nodes by kind (in insertion order) and edges between node keys."""

    current: str = ""
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: set[tuple[str, str]] = field(default_factory=set)

    def add(self, node: Node) -> str:
        self.nodes.setdefault(node.key, node)
        return node.key

    def link(self, upstream: str, downstream: str) -> None:
        self.edges.add((upstream, downstream))

    def column(self, kind: str) -> list[Node]:
        return [node for node in self.nodes.values() if node.kind == kind]


def _source(source: DataSource) -> Node:
    url = reverse("features:source-detail", kwargs={"name": source.name})
    return Node("source", f"source:{source.pk}", source.name, url)


def _entity(entity: Entity) -> Node:
    url = reverse("features:entity-detail", kwargs={"name": entity.name})
    return Node("entity", f"entity:{entity.pk}", entity.name, url)


def _group(group: FeatureGroup) -> Node:
    return Node("group", f"group:{group.pk}", group.name, group.get_absolute_url())


def _feature(feature: Feature) -> Node:
    return Node("feature", f"feature:{feature.pk}", feature.name, feature.get_absolute_url())


def _service(service: FeatureService) -> Node:
    url = reverse("features:service-detail", kwargs={"name": service.name})
    return Node("service", f"service:{service.pk}", service.name, url)


def _version(version: Any) -> Node:
    label = f"{version.model.name} v{version.version}"
    return Node("version", f"version:{version.pk}", label, version.get_absolute_url())


def _job(job: Job) -> Node:
    label = f"#{job.pk} {job.get_kind_display().lower()}"
    return Node("job", f"job:{job.pk}", label, job.get_absolute_url())


def _build(
    *,
    user: Any,
    groups: Iterable[FeatureGroup],
    features: Iterable[Feature] | None = None,
    services: Iterable[FeatureService] | None = None,
) -> Graph:
    """The graph through `groups` (and only `features` of them, when given): their sources and
    entity upstream; downstream their features, the services using those (or `services`), the
    services' model versions, and the jobs of the groups and versions."""
    graph = Graph()
    groups = list(groups)
    features = (
        list(features)
        if features is not None
        else [f for group in groups for f in group.features.all()]
    )
    for group in groups:
        group_key = graph.add(_group(group))
        graph.link(graph.add(_entity(group.entity)), group_key)
        for source in selectors.group_sources(group=group):
            graph.link(graph.add(_source(source)), group_key)
    feature_keys = {}
    for feature in features:
        feature_keys[feature.pk] = key = graph.add(_feature(feature))
        graph.link(_group(feature.group).key, key)
        if feature.group not in groups:
            graph.add(_group(feature.group))
    services = (
        list(services) if services is not None else list(selectors.services_of(features=features))
    )
    for service in services:
        service_key = graph.add(_service(service))
        for feature_pk in service.features.values_list("pk", flat=True):
            if feature_pk in feature_keys:
                graph.link(feature_keys[feature_pk], service_key)
    for version in selectors.versions_of(services=services):
        version_key = graph.add(_version(version))
        graph.link(_service(version.feature_service).key, version_key)
        for job in selectors.version_lineage_jobs(version=version, user=user):
            graph.link(version_key, graph.add(_job(job)))
    for group in groups:
        for job in selectors.group_lineage_jobs(group=group, user=user):
            graph.link(_group(group).key, graph.add(_job(job)))
    return graph


def source_lineage(*, source: DataSource, user: Any) -> Graph:
    graph = _build(user=user, groups=selectors.source_groups(source=source))
    graph.add(_source(source))
    graph.current = _source(source).key
    return graph


def entity_lineage(*, entity: Entity, user: Any) -> Graph:
    graph = _build(user=user, groups=selectors.entity_groups(entity=entity))
    graph.add(_entity(entity))
    graph.current = _entity(entity).key
    return graph


def group_lineage(*, group: FeatureGroup, user: Any) -> Graph:
    graph = _build(user=user, groups=[group])
    graph.current = _group(group).key
    return graph


def feature_lineage(*, feature: Feature, user: Any) -> Graph:
    graph = _build(user=user, groups=[feature.group], features=[feature])
    graph.current = _feature(feature).key
    return graph


def service_lineage(*, service: FeatureService, user: Any) -> Graph:
    features = list(selectors.service_features(service=service))
    groups = list({f.group.pk: f.group for f in features}.values())
    graph = _build(user=user, groups=groups, features=features, services=[service])
    graph.add(_service(service))
    graph.current = _service(service).key
    return graph


# --- drawing ----------------------------------------------------------------------------------

_COLUMN = 150
_BOX_W = 136
_BOX_H = 26
_ROW = 34
_TOP = 24
_LABEL_CHARS = 19


def _short(label: str) -> str:
    return label if len(label) <= _LABEL_CHARS else label[: _LABEL_CHARS - 1] + "…"


def graph_svg(graph: Graph) -> SafeString:
    """The graph as an inline SVG: one column per kind present, boxes that link to each node's
    page (the page's own node outlined), lines for edges. Empty for an empty graph."""
    if not graph.nodes:
        return mark_safe("")
    columns = [kind for kind in KINDS if graph.column(kind)]
    places: dict[str, tuple[float, float]] = {}
    boxes = []
    more = []
    rows = 1
    for index, kind in enumerate(columns):
        nodes = graph.column(kind)
        shown = nodes[:MAX_PER_COLUMN]
        rows = max(rows, len(shown) + (len(nodes) > len(shown)))
        x = index * _COLUMN + 4
        for row, node in enumerate(shown):
            y = _TOP + row * _ROW
            places[node.key] = (x, y)
            boxes.append((node, x, y))
        if len(nodes) > len(shown):
            more.append((x + 4, _TOP + len(shown) * _ROW + 17, f"+{len(nodes) - len(shown)} more"))
    width = len(columns) * _COLUMN
    height = _TOP + rows * _ROW
    headings = format_html_join(
        "",
        '<text class="heading" x="{}" y="14">{}</text>',
        ((index * _COLUMN + 4, HEADINGS[kind]) for index, kind in enumerate(columns)),
    )
    lines = format_html_join(
        "",
        '<line x1="{}" y1="{}" x2="{}" y2="{}"/>',
        (
            (
                places[a][0] + _BOX_W,
                places[a][1] + _BOX_H / 2,
                places[b][0],
                places[b][1] + _BOX_H / 2,
            )
            for a, b in sorted(graph.edges)
            if a in places and b in places
        ),
    )
    drawn = format_html_join(
        "",
        '<a href="{}" class="node {}{}" data-key="{}"><title>{}</title>'
        '<rect x="{}" y="{}" width="{}" height="{}" rx="4"/>'
        '<text x="{}" y="{}">{}</text></a>',
        (
            (
                node.url,
                node.kind,
                " current" if node.key == graph.current else "",
                node.key,
                node.label,
                x,
                y,
                _BOX_W,
                _BOX_H,
                x + 6,
                y + 17,
                _short(node.label),
            )
            for node, x, y in boxes
        ),
    )
    extra = format_html_join(
        "", '<text class="more" x="{}" y="{}">{}</text>', ((x, y, t) for x, y, t in more)
    )
    return format_html(
        '<svg class="lineage" role="img" aria-label="Lineage graph" '
        'xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {} {}" width="{}" height="{}" '
        # natural size: on a phone the wrapper scrolls sideways rather than shrink the labels
        'preserveAspectRatio="xMinYMin meet" style="max-width:none;height:auto">'
        "<style>"
        ".lineage text{{font:11px sans-serif;fill:#1d2330}}"
        ".lineage .heading,.lineage .more{{fill:#5c6577}}"
        ".lineage line{{stroke:#9aa3b5;stroke-width:1.2}}"
        ".lineage rect{{fill:#eef3fd;stroke:#2f6fde}}"
        ".lineage .current rect{{fill:#2f6fde}}"
        ".lineage .current text{{fill:#fff;font-weight:bold}}"
        ".lineage a:hover rect{{stroke-width:2}}"
        "</style>{}{}{}{}</svg>",
        width,
        height,
        width,
        height,
        headings,
        lines,
        drawn,
        extra,
    )
