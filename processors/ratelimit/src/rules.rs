//! The rules file: parsing, validation and matching requests to rules (format in the crate doc).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::algorithm::Limit;
use crate::keys;

/// A rule's name (unique in the file; part of its Redis keys and metric labels).
pub type RuleName = Arc<str>;

/// Request attributes rules match on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestInfo<'a> {
    /// The authenticated user, if any.
    pub user_id: Option<&'a str>,
    /// The client address.
    pub ip: Option<&'a str>,
    /// The API key the request presented, if any.
    pub api_key: Option<&'a str>,
    /// The matched route template (`/v1/urls`, `/{code}`), not the raw path.
    pub route: &'a str,
    /// The HTTP method (`GET`, `POST`, …).
    pub method: &'a str,
}

/// A request attribute a rule can be keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Descriptor {
    /// [`RequestInfo::user_id`].
    UserId,
    /// [`RequestInfo::ip`].
    Ip,
    /// [`RequestInfo::api_key`] (stored hashed).
    ApiKey,
    /// [`RequestInfo::route`].
    Route,
    /// [`RequestInfo::method`].
    Method,
}

impl Descriptor {
    fn value<'a>(self, request: &RequestInfo<'a>) -> Option<&'a str> {
        match self {
            Descriptor::UserId => request.user_id,
            Descriptor::Ip => request.ip,
            Descriptor::ApiKey => request.api_key,
            Descriptor::Route => Some(request.route),
            Descriptor::Method => Some(request.method),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Descriptor::UserId => "user_id",
            Descriptor::Ip => "ip",
            Descriptor::ApiKey => "api_key",
            Descriptor::Route => "route",
            Descriptor::Method => "method",
        }
    }
}

/// What a rule does when Redis does not answer in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnRedisError {
    /// Let the request through (the default: the limiter never takes the API down).
    #[default]
    Open,
    /// Refuse the request (429, retry in a second).
    Closed,
}

/// Which requests a rule applies to; every listed attribute must match, absent ones match all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestMatch {
    /// Methods, upper case.
    pub methods: Vec<String>,
    /// Route patterns; `*` matches any run of characters.
    pub routes: Vec<String>,
    /// Exact user ids.
    pub user_ids: Vec<String>,
    /// Exact client addresses.
    pub ips: Vec<String>,
    /// Exact API keys.
    pub api_keys: Vec<String>,
}

impl RequestMatch {
    /// Whether `request` satisfies every listed attribute.
    pub fn matches(&self, request: &RequestInfo<'_>) -> bool {
        let any_of = |list: &[String], value: Option<&str>| {
            list.is_empty() || value.is_some_and(|v| list.iter().any(|x| x == v))
        };
        (self.methods.is_empty()
            || self
                .methods
                .iter()
                .any(|m| m.eq_ignore_ascii_case(request.method)))
            && (self.routes.is_empty() || self.routes.iter().any(|p| glob(p, request.route)))
            && any_of(&self.user_ids, request.user_id)
            && any_of(&self.ips, request.ip)
            && any_of(&self.api_keys, request.api_key)
    }
}

/// One limit of a rule, with the name its `RateLimit-Policy` item carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedLimit {
    /// Unique within the rule; defaults to the window (`1s`, `1m`).
    pub name: Arc<str>,
    /// The limit.
    pub limit: Limit,
}

/// One validated rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Unique name.
    pub name: RuleName,
    /// Which requests it applies to.
    pub matcher: RequestMatch,
    /// The attributes whose values make one identity (one set of counters); empty = global.
    pub key: Vec<Descriptor>,
    /// Its limits, all checked in one script call.
    pub limits: Vec<NamedLimit>,
    /// Decide and count, but never block.
    pub shadow: bool,
    /// Behaviour when Redis fails or is slow.
    pub on_redis_error: OnRedisError,
}

impl Rule {
    /// The Redis key base of `request`'s identity under this rule, or `None` when the request
    /// does not match or lacks one of the key's attributes.
    pub(crate) fn identity(&self, prefix: &str, request: &RequestInfo<'_>) -> Option<String> {
        if !self.matcher.matches(request) {
            return None;
        }
        let values = self
            .key
            .iter()
            .map(|d| d.value(request).filter(|v| !v.is_empty()).map(|v| (*d, v)))
            .collect::<Option<Vec<_>>>()?;
        Some(keys::rule_base(prefix, &self.name, &values))
    }

    /// The limits alone, in order.
    pub fn limit_values(&self) -> Vec<Limit> {
        self.limits.iter().map(|l| l.limit).collect()
    }
}

/// Why a rules file was refused.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// The file could not be read.
    #[error("read rules file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The YAML does not have the rules format.
    #[error("parse rules: {0}")]
    Parse(#[from] serde_yaml::Error),
    /// A rule breaks a constraint.
    #[error("rule {rule:?}: {message}")]
    Invalid {
        /// The rule's name (or position).
        rule: String,
        /// What is wrong.
        message: String,
    },
}

/// A validated rules file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleSet {
    /// The rules in file order.
    pub rules: Vec<Rule>,
}

impl RuleSet {
    /// Reads and validates a rules file.
    pub fn load(path: &Path) -> Result<Self, RulesError> {
        let text = std::fs::read_to_string(path).map_err(|source| RulesError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Parses and validates rules YAML (JSON works too: the seed's example parses as is).
    pub fn parse(yaml: &str) -> Result<Self, RulesError> {
        let file: raw::RulesFile = serde_yaml::from_str(yaml)?;
        let mut names = HashSet::new();
        let mut rules = Vec::with_capacity(file.rules.len());
        for (index, raw) in file.rules.into_iter().enumerate() {
            let rule = raw.validate(index)?;
            if !names.insert(rule.name.clone()) {
                return Err(invalid(
                    &rule.name,
                    "duplicate rule name (name the rules explicitly)",
                ));
            }
            rules.push(rule);
        }
        Ok(Self { rules })
    }

    /// The rules `request` falls under, each with the key base of its identity.
    pub(crate) fn matching<'a>(
        &'a self,
        prefix: &'a str,
        request: &'a RequestInfo<'_>,
    ) -> impl Iterator<Item = (&'a Rule, String)> + 'a {
        self.rules
            .iter()
            .filter_map(move |rule| rule.identity(prefix, request).map(|base| (rule, base)))
    }
}

fn invalid(rule: &str, message: impl Into<String>) -> RulesError {
    RulesError::Invalid {
        rule: rule.to_owned(),
        message: message.into(),
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'+'))
}

/// `*` matches any run of characters (including `/`); everything else literally.
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

#[path = "rules_yaml.rs"]
mod raw;

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
