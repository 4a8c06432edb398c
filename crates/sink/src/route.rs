//! Routes: which sinks an alert goes to. Routes are tried in order; an alert goes to
//! the sinks of every route it matches up to the first matching route without
//! `continue` (Alertmanager's rule), and to the default sinks when it matched none.

use demarc_model::{Alert, Category, Severity, SrmLayer};

/// What a route matches. An empty list matches anything; every condition set must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Matcher {
    /// Severity at least this.
    pub min_severity: Option<Severity>,
    /// Severity exactly one of these.
    pub severities: Vec<Severity>,
    /// Rule id globs (`*` any run of characters, `?` one character).
    pub rules: Vec<String>,
    pub categories: Vec<Category>,
    pub providers: Vec<String>,
    /// AWS account or GCP project globs.
    pub accounts: Vec<String>,
    pub srm_layers: Vec<SrmLayer>,
}

impl Matcher {
    pub fn matches(&self, alert: &Alert) -> bool {
        self.min_severity.is_none_or(|min| alert.severity >= min)
            && (self.severities.is_empty() || self.severities.contains(&alert.severity))
            && (self.rules.is_empty() || self.rules.iter().any(|g| glob(g, &alert.rule_id)))
            && (self.categories.is_empty() || self.categories.contains(&alert.category))
            && (self.providers.is_empty() || self.providers.contains(&alert.provider))
            && (self.accounts.is_empty()
                || alert
                    .account_id
                    .as_deref()
                    .is_some_and(|a| self.accounts.iter().any(|g| glob(g, a))))
            && (self.srm_layers.is_empty() || self.srm_layers.contains(&alert.srm_layer))
    }
}

/// One route: a matcher and the sinks (by index) it sends to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub name: String,
    pub matcher: Matcher,
    pub sinks: Vec<usize>,
    /// Keep trying the routes after this one when it matches.
    pub continue_matching: bool,
}

/// Every route, and the sinks of alerts that match none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routes {
    pub routes: Vec<Route>,
    pub default: Vec<usize>,
}

impl Routes {
    /// The sinks `alert` goes to, each once, in the order first named.
    pub fn sinks_for(&self, alert: &Alert) -> Vec<usize> {
        let mut sinks = Vec::new();
        let mut matched = false;
        for route in &self.routes {
            if !route.matcher.matches(alert) {
                continue;
            }
            matched = true;
            for &sink in &route.sinks {
                if !sinks.contains(&sink) {
                    sinks.push(sink);
                }
            }
            if !route.continue_matching {
                break;
            }
        }
        if !matched {
            sinks.clone_from(&self.default);
        }
        sinks
    }
}

/// Whether `text` matches `pattern`, where `*` stands for any run of characters and
/// `?` for one.
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    // The last `*` seen and the text position it was tried at, to backtrack to.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An alert of `rule` at `severity` (AWS, account 111122223333, public exposure,
    /// data layer).
    fn alert(rule: &str, severity: Severity) -> Alert {
        let mut alert = crate::testing::alert(rule, 0, "b");
        alert.severity = severity;
        alert
    }

    #[test]
    fn globs_match_runs_and_single_characters() {
        assert!(glob("aws-*", "aws-s3-public"));
        assert!(glob("*public*", "aws-s3-public-acl"));
        assert!(glob("a?c", "abc"));
        assert!(!glob("a?c", "ac"));
        assert!(glob("*", ""));
        assert!(!glob("aws-*", "gcp-x"));
        assert!(glob("12*9", "123459"));
        assert!(!glob("12*9", "12345"));
        assert!(glob("exact", "exact") && !glob("exact", "exactly"));
    }

    fn route(name: &str, matcher: Matcher, sinks: Vec<usize>, cont: bool) -> Route {
        Route {
            name: name.into(),
            matcher,
            sinks,
            continue_matching: cont,
        }
    }

    #[test]
    fn routes_stop_at_the_first_match_unless_told_to_continue() {
        let routes = Routes {
            routes: vec![
                route(
                    "paging",
                    Matcher {
                        min_severity: Some(Severity::High),
                        ..Matcher::default()
                    },
                    vec![0],
                    true,
                ),
                route(
                    "logging team",
                    Matcher {
                        categories: vec![Category::LoggingDisabled],
                        ..Matcher::default()
                    },
                    vec![1, 0],
                    false,
                ),
                route(
                    "aws",
                    Matcher {
                        providers: vec!["aws".into()],
                        ..Matcher::default()
                    },
                    vec![2],
                    false,
                ),
            ],
            default: vec![3],
        };
        let mut a = alert("r", Severity::Critical);
        a.category = Category::LoggingDisabled;
        // Paging continues; the logging route matches and stops; 0 is named once.
        assert_eq!(routes.sinks_for(&a), vec![0, 1]);
        a.category = Category::PublicExposure;
        assert_eq!(routes.sinks_for(&a), vec![0, 2]);
        let mut low = alert("r", Severity::Low);
        assert_eq!(routes.sinks_for(&low), vec![2]);
        low.provider = "gcp".into();
        assert_eq!(routes.sinks_for(&low), vec![3], "no route: the default");
    }

    #[test]
    fn every_condition_of_a_matcher_must_hold() {
        let m = Matcher {
            severities: vec![Severity::Medium],
            rules: vec!["aws-s3-*".into()],
            accounts: vec!["1111*".into()],
            srm_layers: vec![SrmLayer::Data],
            ..Matcher::default()
        };
        let mut a = alert("aws-s3-public", Severity::Medium);
        a.account_id = Some("111122223333".into());
        a.srm_layer = SrmLayer::Data;
        assert!(m.matches(&a));
        a.severity = Severity::High;
        assert!(!m.matches(&a), "exact severity");
        a.severity = Severity::Medium;
        a.account_id = None;
        assert!(!m.matches(&a), "no account never matches an account glob");
        a.account_id = Some("111122223333".into());
        a.srm_layer = SrmLayer::Identity;
        assert!(!m.matches(&a));
    }
}
