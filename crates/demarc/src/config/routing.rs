//! `[spool]`, `[suppression]`, `[sinks.NAME]`, `[[routes]]` and `[default_route]`: where
//! alerts go, checked with the line of every mistake.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use demarc_model::{Category, Severity, SrmLayer};
use demarc_sink::route::{Matcher, Route, Routes};
use demarc_sink::routing::Suppression;
use serde::Deserialize;
use toml::Spanned;

use super::ConfigError;
use super::sinks::{SinkFile, SinkPlan, sink_plan};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SpoolFile {
    path: Spanned<PathBuf>,
    #[serde(default = "default_max_alerts")]
    max_alerts: Spanned<u64>,
    #[serde(default = "default_grace")]
    grace_seconds: Spanned<u64>,
}

fn default_max_alerts() -> Spanned<u64> {
    Spanned::new(0..0, 100_000)
}

fn default_grace() -> Spanned<u64> {
    Spanned::new(0..0, 5)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SuppressionFile {
    window: Option<Spanned<String>>,
    #[serde(default)]
    rules: BTreeMap<String, Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RouteFile {
    name: Option<String>,
    min_severity: Option<Spanned<String>>,
    severity: Option<Spanned<OneOrMany>>,
    #[serde(default)]
    rules: Vec<String>,
    #[serde(default)]
    categories: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    providers: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    accounts: Vec<String>,
    #[serde(default)]
    srm_layers: Option<Spanned<Vec<String>>>,
    sinks: Spanned<Vec<String>>,
    #[serde(default, rename = "continue")]
    continue_matching: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DefaultRouteFile {
    sinks: Spanned<Vec<String>>,
}

/// The parts of the file this module reads.
#[derive(Debug, Default)]
pub(super) struct Sections {
    pub spool: Option<SpoolFile>,
    pub suppression: SuppressionFile,
    pub sinks: BTreeMap<Spanned<String>, SinkFile>,
    pub routes: Vec<RouteFile>,
    pub default_route: Option<DefaultRouteFile>,
    /// `[alerts] stdout`: a `stdout` sink would interleave its lines with these.
    pub alerts_stdout: bool,
}

/// Where alerts go, as configured.
#[derive(Debug, Clone)]
pub struct RoutingPlan {
    pub store: PathBuf,
    pub capacity: u64,
    pub grace: Duration,
    pub suppression: Suppression,
    pub routes: Routes,
    pub sinks: Vec<SinkPlan>,
}

/// A duration such as `90s`, `15m`, `1h`, `2d`, or `0` (none).
pub fn duration(text: &str) -> Option<Duration> {
    if text.trim() == "0" {
        return Some(Duration::ZERO);
    }
    demarc_model::parse_span(text)
}

pub(super) type At<'a> = &'a dyn Fn(Range<usize>, String) -> ConfigError;

fn vocabulary<T: std::str::FromStr<Err = demarc_model::alert::UnknownValue>>(
    values: &Spanned<Vec<String>>,
    field: &str,
    at: At<'_>,
) -> Result<Vec<T>, ConfigError> {
    values
        .get_ref()
        .iter()
        .map(|v| {
            v.parse::<T>()
                .map_err(|e| at(values.span(), format!("routes.{field}: {e}")))
        })
        .collect()
}

impl Sections {
    /// Checks the sections; `None` when no sink is configured.
    pub(super) fn plan(self, base: &Path, at: At<'_>) -> Result<Option<RoutingPlan>, ConfigError> {
        if self.sinks.is_empty() {
            if let Some(route) = self.routes.first() {
                return Err(at(
                    route.sinks.span(),
                    "[[routes]] name sinks, but no [sinks.NAME] is defined".into(),
                ));
            }
            return Ok(None);
        }
        let Some(spool) = self.spool else {
            let first = self.sinks.keys().next().map_or(0..0, Spanned::span);
            return Err(at(
                first,
                "[sinks] need a [spool] with a `path`: the file where alerts wait for their \
                 sinks, on a persistent volume"
                    .into(),
            ));
        };
        let capacity = *spool.max_alerts.get_ref();
        if !(100..=100_000_000).contains(&capacity) {
            return Err(at(
                spool.max_alerts.span(),
                "spool.max_alerts must be between 100 and 100000000 (default 100000)".into(),
            ));
        }
        let grace = *spool.grace_seconds.get_ref();
        if grace > 300 {
            return Err(at(
                spool.grace_seconds.span(),
                "spool.grace_seconds must be at most 300 (default 5)".into(),
            ));
        }
        let parse_window = |text: &Spanned<String>, field: &str| {
            duration(text.get_ref()).ok_or_else(|| {
                at(
                    text.span(),
                    format!(
                        "{field}: `{}` is not a duration: write `30s`, `15m`, `1h`, `1d` or `0`",
                        text.get_ref()
                    ),
                )
            })
        };
        let suppression = Suppression {
            default: match &self.suppression.window {
                Some(w) => parse_window(w, "suppression.window")?,
                None => Duration::from_secs(3600),
            },
            rules: self
                .suppression
                .rules
                .iter()
                .map(|(rule, w)| Ok((rule.clone(), parse_window(w, "suppression.rules")?)))
                .collect::<Result<_, ConfigError>>()?,
        };

        let mut sinks = Vec::new();
        let mut names = Vec::new();
        for (name, sink) in &self.sinks {
            names.push(name.get_ref().clone());
            let plan = sink_plan(name, sink, base, at)?;
            if self.alerts_stdout && matches!(plan.kind, super::SinkKind::Stdout { .. }) {
                return Err(at(
                    name.span(),
                    format!(
                        "sink `{}` prints to standard output, where [alerts] already prints \
                         every alert (their lines would interleave): set `stdout = false` \
                         in [alerts]",
                        name.get_ref()
                    ),
                ));
            }
            sinks.push(plan);
        }
        let index = |list: &Spanned<Vec<String>>| -> Result<Vec<usize>, ConfigError> {
            if list.get_ref().is_empty() {
                return Err(at(
                    list.span(),
                    "`sinks` is empty: name at least one sink".into(),
                ));
            }
            list.get_ref()
                .iter()
                .map(|n| {
                    names.iter().position(|m| m == n).ok_or_else(|| {
                        at(
                            list.span(),
                            format!(
                                "no sink is named `{n}`; the sinks are: {}",
                                names.join(", ")
                            ),
                        )
                    })
                })
                .collect()
        };
        let mut routes = Vec::new();
        for (n, route) in self.routes.iter().enumerate() {
            let min_severity = match &route.min_severity {
                None => None,
                Some(s) => Some(
                    s.get_ref()
                        .parse::<Severity>()
                        .map_err(|e| at(s.span(), format!("routes.min_severity: {e}")))?,
                ),
            };
            let severities = match &route.severity {
                None => Vec::new(),
                Some(s) => {
                    let list = match s.get_ref() {
                        OneOrMany::One(v) => vec![v.clone()],
                        OneOrMany::Many(v) => v.clone(),
                    };
                    vocabulary(&Spanned::new(s.span(), list), "severity", at)?
                }
            };
            let empty = Spanned::new(0..0, Vec::new());
            routes.push(Route {
                name: route
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("route {}", n + 1)),
                matcher: Matcher {
                    min_severity,
                    severities,
                    rules: route.rules.clone(),
                    categories: vocabulary::<Category>(
                        route.categories.as_ref().unwrap_or(&empty),
                        "categories",
                        at,
                    )?,
                    providers: route
                        .providers
                        .as_ref()
                        .map(|p| p.get_ref().clone())
                        .unwrap_or_default(),
                    accounts: route.accounts.clone(),
                    srm_layers: vocabulary::<SrmLayer>(
                        route.srm_layers.as_ref().unwrap_or(&empty),
                        "srm_layers",
                        at,
                    )?,
                },
                sinks: index(&route.sinks)?,
                continue_matching: route.continue_matching,
            });
            if let Some(p) = &route.providers
                && let Some(bad) = p
                    .get_ref()
                    .iter()
                    .find(|v| !["aws", "gcp"].contains(&v.as_str()))
            {
                return Err(at(
                    p.span(),
                    format!("routes.providers: unknown provider `{bad}`; expected aws or gcp"),
                ));
            }
        }
        let default = match &self.default_route {
            Some(d) => index(&d.sinks)?,
            None => Vec::new(),
        };
        if routes.is_empty() && default.is_empty() {
            let first = self.sinks.keys().next().map_or(0..0, Spanned::span);
            return Err(at(
                first,
                "sinks are defined but nothing routes to them: add [[routes]] or a \
                 [default_route] with `sinks = [...]`"
                    .into(),
            ));
        }
        for (i, name) in self.sinks.keys().enumerate() {
            let used = default.contains(&i) || routes.iter().any(|r| r.sinks.contains(&i));
            if !used {
                return Err(at(
                    name.span(),
                    format!(
                        "sink `{}` is not used by any route: add it to a route or remove it",
                        name.get_ref()
                    ),
                ));
            }
        }
        Ok(Some(RoutingPlan {
            store: base.join(spool.path.get_ref()),
            capacity,
            grace: Duration::from_secs(grace),
            suppression,
            routes: Routes { routes, default },
            sinks,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_a_unit() {
        assert_eq!(duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(duration("15m"), Some(Duration::from_secs(900)));
        assert_eq!(duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(duration("2d"), Some(Duration::from_secs(172_800)));
        assert_eq!(duration("0"), Some(Duration::ZERO));
        assert_eq!(duration("15"), None);
        assert_eq!(duration("1w"), None);
        assert_eq!(duration("h"), None);
    }
}
