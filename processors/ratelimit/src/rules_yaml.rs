//! The rules file's shape as written; [`RawRule::validate`] checks one rule and turns it into a
//! [`Rule`] (defaults, the seed's one-limit shorthand, names, limits).

use std::collections::HashSet;

use serde::Deserialize;

use super::{
    Descriptor, NamedLimit, OnRedisError, RequestMatch, Rule, RulesError, invalid, valid_name,
};
use crate::algorithm::{Algorithm, Limit};
use crate::keys;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesFile {
    #[serde(default)]
    pub rules: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> Default for OneOrMany<T> {
    fn default() -> Self {
        OneOrMany::Many(Vec::new())
    }
}

impl<T> OneOrMany<T> {
    fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::One(x) => vec![x],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawMatch {
    #[serde(default)]
    method: OneOrMany<String>,
    #[serde(default)]
    route: OneOrMany<String>,
    #[serde(default)]
    user_id: OneOrMany<String>,
    #[serde(default)]
    ip: OneOrMany<String>,
    #[serde(default)]
    api_key: OneOrMany<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimit {
    name: Option<String>,
    #[serde(default)]
    algorithm: Algorithm,
    limit: u64,
    #[serde(with = "crate::algorithm::window_serde")]
    window: std::time::Duration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    name: Option<String>,
    #[serde(default, rename = "match")]
    matcher: RawMatch,
    #[serde(default)]
    key: OneOrMany<Descriptor>,
    #[serde(default)]
    limits: Vec<RawLimit>,
    // The seed's one-limit shorthand: `{key: user_id, limit: 100, window: 60}`.
    limit: Option<u64>,
    #[serde(default, with = "crate::algorithm::window_serde::optional")]
    window: Option<std::time::Duration>,
    algorithm: Option<Algorithm>,
    #[serde(default)]
    shadow: bool,
    #[serde(default)]
    on_redis_error: OnRedisError,
}

impl RawRule {
    pub fn validate(self, index: usize) -> Result<Rule, RulesError> {
        let key = self.key.into_vec();
        let name = self.name.unwrap_or_else(|| match key.is_empty() {
            true => "global".to_owned(),
            false => key.iter().map(|d| d.name()).collect::<Vec<_>>().join("+"),
        });
        let at = |m: &str| invalid(&name, m);
        if !valid_name(&name) {
            return Err(invalid(
                &format!("#{}", index + 1),
                format!("bad name {name:?}: use 1-64 of [A-Za-z0-9_.+-]"),
            ));
        }
        if name == keys::DIRECT {
            return Err(at(
                "the name `direct` is reserved for RateLimiter::check_key",
            ));
        }
        let mut limits = self.limits;
        match (self.limit, self.window) {
            (Some(limit), Some(window)) => limits.push(RawLimit {
                name: None,
                algorithm: self.algorithm.unwrap_or_default(),
                limit,
                window,
            }),
            (None, None) if self.algorithm.is_none() => {}
            _ => return Err(at("a rule-level limit needs both `limit` and `window`")),
        }
        if limits.is_empty() {
            return Err(at("no limits"));
        }
        if key.iter().collect::<HashSet<_>>().len() != key.len() {
            return Err(at("a descriptor appears twice in `key`"));
        }
        let mut seen = HashSet::new();
        let mut named = Vec::with_capacity(limits.len());
        for raw in limits {
            let limit = Limit::new(raw.algorithm, raw.limit, raw.window);
            limit.validate().map_err(|e| at(&e.to_string()))?;
            let limit_name = raw.name.unwrap_or_else(|| {
                humantime::format_duration(raw.window)
                    .to_string()
                    .replace(' ', "")
            });
            if !valid_name(&limit_name) {
                return Err(at(&format!("bad limit name {limit_name:?}")));
            }
            // One key per (algorithm, window) and one policy item per name.
            if !seen.insert((limit.algorithm, limit.window)) || !seen_name(&named, &limit_name) {
                return Err(at(&format!(
                    "two limits named {limit_name:?} or with the same algorithm and window"
                )));
            }
            named.push(NamedLimit {
                name: limit_name.into(),
                limit,
            });
        }
        let m = self.matcher;
        let methods = m
            .method
            .into_vec()
            .into_iter()
            .map(|x| x.to_ascii_uppercase())
            .collect();
        Ok(Rule {
            name: name.into(),
            matcher: RequestMatch {
                methods,
                routes: m.route.into_vec(),
                user_ids: m.user_id.into_vec(),
                ips: m.ip.into_vec(),
                api_keys: m.api_key.into_vec(),
            },
            key,
            limits: named,
            shadow: self.shadow,
            on_redis_error: self.on_redis_error,
        })
    }
}

fn seen_name(named: &[NamedLimit], name: &str) -> bool {
    named.iter().all(|l| &*l.name != name)
}
