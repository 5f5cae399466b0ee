"""The pieces every dashboard is made of: the data source, variables, annotations, panels and
a few PromQL shapes. Build-time only: this is where grafana-foundation-sdk is used.

Every panel queries the `datasource` variable, so one JSON file works through file
provisioning and through the import dialog alike (no `${DS_...}` inputs).
"""

from __future__ import annotations

import string
from collections.abc import Sequence

from grafana_foundation_sdk.builders import stat as stat_panel
from grafana_foundation_sdk.builders import statetimeline, table, text, timeseries
from grafana_foundation_sdk.builders.common import (
    GraphThresholdsStyleConfig,
    ReduceDataOptions,
    ScaleDistributionConfig,
    StackingConfig,
    VizLegendOptions,
)
from grafana_foundation_sdk.builders.dashboard import (
    AnnotationQuery,
    Dashboard,
    DashboardLink,
    DatasourceVariable,
    QueryVariable,
    Row,
    ThresholdsConfig,
)
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models.common import (
    BigValueColorMode,
    BigValueGraphMode,
    BigValueTextMode,
    GraphDrawStyle,
    GraphThresholdsStyleMode,
    LegendDisplayMode,
    LegendPlacement,
    ScaleDistribution,
    StackingMode,
    VisibilityMode,
)
from grafana_foundation_sdk.models.prometheus import PromQueryFormat
from grafana_foundation_sdk.models.text import TextMode

from dashboards.export import DATASOURCE_UID

DS = model.DataSourceRef(type_val="prometheus", uid="${datasource}")
GRAFANA_DS = model.DataSourceRef(type_val="grafana", uid="-- Grafana --")
TAG = "driftwatch"
RATE = "[$__rate_interval]"

Step = tuple[float | None, str]  # (from this value up, color); None = from -infinity


class Board:
    """A dashboard under construction: panels get ids in the order they are added and flow
    left to right on the 24-column grid, a row starting a new line."""

    def __init__(self, title: str, uid: str, description: str) -> None:
        self.dashboard = (
            Dashboard(title).uid(uid).description(description).tags([TAG]).editable()
            .tooltip(model.DashboardCursorSync.CROSSHAIR)
            .with_variable(DatasourceVariable("datasource").label("Data source")
                           .type("prometheus")
                           .current(model.VariableOption(text="Prometheus", value=DATASOURCE_UID)))
            .annotation(AnnotationQuery().name("Annotations & Alerts").built_in(1)
                        .datasource(GRAFANA_DS).enable(True).hide(True)
                        .icon_color("rgba(0, 211, 255, 1)").type("dashboard"))
            .link(DashboardLink("driftwatch").type(model.DashboardLinkType.DASHBOARDS)
                  .tags([TAG]).as_dropdown(True).include_vars(True).keep_time(True)))
        self._next_id = 1

    def row(self, title: str) -> None:
        self.dashboard.with_row(Row(title).id(self._take()))

    def add(self, panel: cogbuilder.Builder[model.Panel], w: int, h: int) -> None:
        built = panel.build()
        built.id_val = self._take()
        built.grid_pos = model.GridPos(h=h, w=w)
        self.dashboard.with_panel(_Built(built))

    def _take(self) -> int:
        self._next_id += 1
        return self._next_id - 1


class _Built(cogbuilder.Builder[model.Panel]):
    def __init__(self, panel: model.Panel) -> None:
        self._panel = panel

    def build(self) -> model.Panel:
        return self._panel


def label_values(name: str, label: str, metric: str, *, title: str, all_value: str = ".*",
                 description: str = "") -> QueryVariable:
    """A multi-value variable of one label's values, with All meaning any value, empty
    included (the whole-service rows have model="")."""
    query = f"label_values({metric}, {label})"
    return (QueryVariable(name).label(title).description(description).datasource(DS)
            .query(query).definition(query).multi(True).include_all(True)
            .all_value(all_value).refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(model.VariableSort.ALPHABETICAL_CASE_INSENSITIVE_ASC))


def alert_annotations(board: Board, alerts_filter: str = "") -> None:
    """Firing alerts as annotations: Prometheus rule alerts (ALERTS) and the daemon's own."""
    sep = ", " if alerts_filter else ""
    board.dashboard.annotation(
        AnnotationQuery().name("Prometheus alerts").datasource(DS).enable(True)
        .icon_color("red").type("dashboard")
        .expr(f'ALERTS{{alertstate="firing"{sep}{alerts_filter}}}').step("1m")
        .title_format("{{alertname}}").text_format("{{severity}} {{service}} {{model}}"))
    board.dashboard.annotation(
        AnnotationQuery().name("driftwatch alerts").datasource(DS).enable(True)
        .icon_color("orange").type("dashboard")
        .expr('driftwatch_alerts{state="firing"} > 0').step("1m")
        .title_format("{{alertname}}").text_format("{{severity}}"))


def prom(expr: str, legend: str = "") -> Dataquery:
    return Dataquery().expr(expr).legend_format(legend or "__auto").range()


def whole(expr: str) -> str:
    """Name the whole-service rows (model="") in legends."""
    return f'label_replace({expr}, "model", "all models", "model", "")'


def thresholds(*steps: Step) -> ThresholdsConfig:
    return ThresholdsConfig().mode(model.ThresholdsMode.ABSOLUTE).steps(
        [model.Threshold(value=value, color=color) for value, color in steps])


def _refs(queries: Sequence[Dataquery]) -> list[cogbuilder.Builder[cogvariants.Dataquery]]:
    return [q.ref_id(ref) for q, ref in zip(queries, string.ascii_uppercase, strict=False)]


def graph(title: str, description: str, unit: str, *queries: Dataquery,
          steps: Sequence[Step] = (), stack: bool = False, log: bool = False,
          bars: bool = False, min_val: float | None = None,
          max_val: float | None = None) -> timeseries.Panel:
    """A time series; threshold steps, when given, are drawn as dashed lines."""
    panel = (timeseries.Panel().title(title).description(description).datasource(DS)
             .unit(unit).targets(_refs(queries)).fill_opacity(10 if not stack else 60)
             .line_width(1).show_points(VisibilityMode.NEVER)
             .legend(VizLegendOptions().display_mode(LegendDisplayMode.LIST)
                     .placement(LegendPlacement.BOTTOM).show_legend(True)))
    if steps:
        panel = panel.thresholds(thresholds(*steps)).thresholds_style(
            GraphThresholdsStyleConfig().mode(GraphThresholdsStyleMode.DASHED))
    if stack:
        panel = panel.stacking(StackingConfig().mode(StackingMode.NORMAL))
    if log:
        panel = panel.scale_distribution(
            ScaleDistributionConfig().type(ScaleDistribution.LOG).log(10))
    if bars:
        panel = panel.draw_style(GraphDrawStyle.BARS).fill_opacity(80)
    if min_val is not None:
        panel = panel.min(min_val)
    if max_val is not None:
        panel = panel.max(max_val)
    return panel


def stat(title: str, description: str, unit: str, *queries: Dataquery,
         steps: Sequence[Step] = ((None, "green"),), no_value: str | None = None,
         show_name: bool = False, name_only: bool = False,
         decimals: int | None = None) -> stat_panel.Panel:
    """The last value of each series, coloured by its thresholds."""
    mode = (BigValueTextMode.NAME if name_only else
            BigValueTextMode.VALUE_AND_NAME if show_name else BigValueTextMode.AUTO)
    panel = (stat_panel.Panel().title(title).description(description).datasource(DS)
             .unit(unit).targets(_refs(queries)).thresholds(thresholds(*steps))
             .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).values(False))
             .color_mode(BigValueColorMode.VALUE).graph_mode(BigValueGraphMode.NONE)
             .text_mode(mode))
    if no_value is not None:
        panel = panel.no_value(no_value)
    if decimals is not None:
        panel = panel.decimals(decimals)
    return panel


def timeline(title: str, description: str, query: Dataquery,
             states: dict[str, tuple[str, str]]) -> statetimeline.Panel:
    """States over time; `states` maps a value to (its name, its colour)."""
    mapping = model.ValueMap(options={
        value: model.ValueMappingResult(text=name, color=color, index=i)
        for i, (value, (name, color)) in enumerate(states.items())})
    return (statetimeline.Panel().title(title).description(description).datasource(DS)
            .targets(_refs([query])).mappings([mapping]).show_value(VisibilityMode.NEVER)
            .merge_values(True).row_height(0.8).fill_opacity(80)
            .thresholds(thresholds((None, "green"))))


def segment_table(title: str, description: str, by: Sequence[str],
                  columns: Sequence[tuple[str, str]], *, link: tuple[str, str] | None = None,
                  overrides: Sequence[tuple[str, list[model.DynamicConfigValue]]] = (),
                  ) -> table.Panel:
    """One row per label set `by`, one column per (header, instant query); a link, if
    given, is on every cell. Each query is aggregated `by` so the rows join."""
    keys = ", ".join(by)
    queries = [Dataquery().expr(f"max by ({keys}) ({expr})").instant()
               .format(PromQueryFormat.TABLE) for _, expr in columns]
    refs = _refs(queries)
    rename = {f"Value #{string.ascii_uppercase[i]}": header
              for i, (header, _) in enumerate(columns)}
    order = {name: i for i, name in enumerate([*by, *rename.values()])}
    panel = (table.Panel().title(title).description(description).datasource(DS)
             .targets(refs)
             .with_transformation(model.DataTransformerConfig(id_val="merge", options={}))
             .with_transformation(model.DataTransformerConfig(id_val="organize", options={
                 "excludeByName": {"Time": True}, "renameByName": rename,
                 "indexByName": order})))
    if link is not None:
        panel = panel.data_links([DashboardLink(link[0]).url(link[1]).target_blank(True)])
    for name, properties in overrides:
        panel = panel.override_by_name(name, properties)
    return panel


def field_thresholds(*steps: Step) -> list[model.DynamicConfigValue]:
    """Thresholds of one field, overriding the panel's."""
    return [model.DynamicConfigValue(id_val="thresholds", value=thresholds(*steps).build())]


def cell_thresholds(*steps: Step) -> list[model.DynamicConfigValue]:
    """A table column coloured by thresholds."""
    return [*field_thresholds(*steps),
            model.DynamicConfigValue(id_val="custom.cellOptions",
                                     value={"type": "color-text"})]


def cell_states(states: dict[str, tuple[str, str]]) -> list[model.DynamicConfigValue]:
    """A table column of 0/1 shown as named, coloured states."""
    mapping = model.ValueMap(options={
        value: model.ValueMappingResult(text=name, color=color, index=i)
        for i, (value, (name, color)) in enumerate(states.items())})
    return [model.DynamicConfigValue(id_val="mappings", value=[mapping]),
            model.DynamicConfigValue(id_val="custom.cellOptions",
                                     value={"type": "color-background"})]


def note(title: str, markdown: str) -> text.Panel:
    return text.Panel().title(title).mode(TextMode.MARKDOWN).content(markdown)
