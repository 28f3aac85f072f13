use std::time::Duration;

use super::*;
use crate::algorithm::Algorithm;

fn request<'a>(method: &'a str, route: &'a str) -> RequestInfo<'a> {
    RequestInfo {
        user_id: None,
        ip: Some("10.0.0.1"),
        api_key: Some("key-1"),
        route,
        method,
    }
}

#[test]
fn the_seeds_json_example_is_a_rules_file() {
    let set = RuleSet::parse(
        r#"{
          "rules": [
            { "key": "user_id", "limit": 100, "window": 60 },
            { "key": "ip", "limit": 1000, "window": 60 },
            { "key": "api_key", "limit": 10000, "window": 3600 }
          ]
        }"#,
    )
    .unwrap();
    let names: Vec<&str> = set.rules.iter().map(|r| &*r.name).collect();
    assert_eq!(names, ["user_id", "ip", "api_key"]);
    let l = &set.rules[2].limits[0];
    assert_eq!(&*l.name, "1h");
    assert_eq!(
        l.limit,
        Limit::new(
            Algorithm::SlidingWindowCounter,
            10_000,
            Duration::from_secs(3600)
        )
    );
    assert_eq!(set.rules[0].on_redis_error, OnRedisError::Open);
    assert!(!set.rules[0].shadow);
}

#[test]
fn the_full_form_parses() {
    let set = RuleSet::parse(
        "rules:
  - name: api-key-writes
    match: {method: [post, PUT], route: /v1/*}
    key: [api_key, route]
    limits:
      - {name: burst, algorithm: token_bucket, limit: 10, window: 1s}
      - {limit: 100, window: 1m}
    shadow: true
    on_redis_error: closed",
    )
    .unwrap();
    let rule = &set.rules[0];
    assert_eq!(rule.matcher.methods, ["POST", "PUT"]);
    assert_eq!(rule.key, [Descriptor::ApiKey, Descriptor::Route]);
    assert_eq!(rule.limits.len(), 2);
    assert_eq!(&*rule.limits[1].name, "1m");
    assert!(rule.shadow);
    assert_eq!(rule.on_redis_error, OnRedisError::Closed);
}

#[test]
fn invalid_files_are_refused_with_the_rule_named() {
    let bad = [
        ("rules: [{name: a, key: ip}]", "no limits"),
        ("rules: [{name: a, key: ip, limit: 5}]", "both"),
        (
            "rules: [{name: a, key: ip, limit: 0, window: 1s}]",
            "at least 1",
        ),
        (
            "rules: [{name: 'a b', key: ip, limit: 1, window: 1s}]",
            "bad name",
        ),
        ("rules: [{name: direct, limit: 1, window: 1s}]", "reserved"),
        (
            "rules: [{key: ip, limit: 1, window: 1s}, {key: ip, limit: 2, window: 1m}]",
            "duplicate",
        ),
        (
            "rules: [{name: a, key: [ip, ip], limit: 1, window: 1s}]",
            "twice",
        ),
        (
            "rules: [{name: a, limits: [{limit: 1, window: 1s}, {limit: 2, window: 1s}]}]",
            "same algorithm",
        ),
    ];
    for (yaml, why) in bad {
        let error = RuleSet::parse(yaml).expect_err(yaml).to_string();
        assert!(error.contains(why), "{yaml}: {error}");
    }
    for yaml in [
        "rules: [{name: a, key: cookie, limit: 1, window: 1s}]",
        "rules: [{name: a, limit: 1, window: 1s, shadwo: true}]",
        "rules: [{name: a, match: {path: /x}, limit: 1, window: 1s}]",
        "rules: [{name: a, limit: 1, window: soon}]",
        "rule: []",
    ] {
        assert!(
            matches!(RuleSet::parse(yaml), Err(RulesError::Parse(_))),
            "{yaml}"
        );
    }
}

#[test]
fn rules_match_method_route_and_values_and_need_their_key() {
    let set = RuleSet::parse(
        "rules:
  - {name: writes, match: {method: POST, route: /v1/*}, key: api_key, limit: 10, window: 1s}
  - {name: redirects, match: {method: GET, route: '/{code}'}, key: ip, limit: 50, window: 1s}
  - {name: users, key: user_id, limit: 5, window: 1s}
  - {name: vip, match: {api_key: [key-1, key-2]}, key: api_key, limit: 1000, window: 1s}
  - {name: global, limit: 10000, window: 1s}",
    )
    .unwrap();
    let names = |r: &RequestInfo<'_>| -> Vec<String> {
        set.matching("rl", r)
            .map(|(rule, _)| rule.name.to_string())
            .collect()
    };
    assert_eq!(
        names(&request("post", "/v1/urls")),
        ["writes", "vip", "global"]
    );
    assert_eq!(
        names(&request("GET", "/{code}")),
        ["redirects", "vip", "global"]
    );
    let anonymous = RequestInfo {
        api_key: None,
        ..request("POST", "/v1/urls")
    };
    assert_eq!(
        names(&anonymous),
        ["global"],
        "a rule keyed by a missing attribute is skipped"
    );
    let user = RequestInfo {
        user_id: Some("u1"),
        ..anonymous
    };
    assert_eq!(names(&user), ["users", "global"]);
    let empty = RequestInfo {
        user_id: Some(""),
        ..anonymous
    };
    assert_eq!(
        names(&empty),
        ["global"],
        "an empty value is a missing value"
    );
}

#[test]
fn identities_separate_values_and_rules() {
    let set =
        RuleSet::parse("rules: [{name: per-ip, key: [ip, method], limit: 1, window: 1s}]").unwrap();
    let rule = &set.rules[0];
    let a = rule.identity("rl", &request("GET", "/")).unwrap();
    assert_eq!(a, "{rl:per-ip:10.0.0.1:GET}");
    let other_ip = RequestInfo {
        ip: Some("10.0.0.2"),
        ..request("GET", "/")
    };
    assert_ne!(rule.identity("rl", &other_ip).unwrap(), a);
    let global = RuleSet::parse("rules: [{limit: 1, window: 1s}]").unwrap();
    assert_eq!(&*global.rules[0].name, "global");
    assert_eq!(
        global.rules[0].identity("x", &request("GET", "/")).unwrap(),
        "{x:global:*}"
    );
}

#[test]
fn globs() {
    assert!(glob("/v1/*", "/v1/urls"));
    assert!(glob("/v1/*", "/v1/urls/abc"));
    assert!(glob("*", ""));
    assert!(glob("/v1/urls", "/v1/urls"));
    assert!(!glob("/v1/urls", "/v1/urls/x"));
    assert!(glob("/v*/urls/*", "/v2/urls/abc"));
    assert!(!glob("/v*/urls/*", "/v2/links/abc"));
    assert!(glob("*.json", "/openapi.json"));
    assert!(!glob("/v1/*", "/v2/urls"));
}

#[test]
fn the_development_rules_file_is_valid() {
    let set = RuleSet::parse(include_str!("../../../config/ratelimit.yaml")).unwrap();
    let create = RequestInfo {
        api_key: Some("sixfold-dev-key"),
        ..request("POST", "/v1/urls")
    };
    let names: Vec<String> = set
        .matching("rl", &create)
        .map(|(r, _)| r.name.to_string())
        .collect();
    assert_eq!(names, ["api-key-writes", "all-per-ip"]);
    assert!(set.rules.iter().any(|r| r.shadow));
}
