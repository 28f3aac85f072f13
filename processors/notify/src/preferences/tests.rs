use super::*;
use proptest::prelude::*;

fn at(rfc3339: &str) -> i64 {
    rfc3339
        .parse::<Timestamp>()
        .expect("test instant parses")
        .as_millisecond()
}

fn quiet(zone: &str, start: &str, end: &str) -> Preferences {
    Preferences {
        quiet_hours: Some(QuietHours {
            start: start.parse().expect("start parses"),
            end: end.parse().expect("end parses"),
        }),
        time_zone: zone.to_owned(),
        ..Preferences::default()
    }
}

fn until(prefs: &Preferences, now: &str) -> Option<i64> {
    quiet_until(prefs, at(now)).expect("quiet_until succeeds")
}

#[test]
fn defaults_match_the_seed_table() {
    let prefs = Preferences::default();
    assert!(prefs.push && prefs.email && !prefs.sms);
    assert_eq!(prefs.quiet_hours, None);
    assert_eq!(prefs.time_zone, "UTC");
    assert_eq!(prefs.hourly_limit, 10);
    let from_empty: Preferences = serde_json::from_str("{}").expect("empty object");
    assert_eq!(from_empty, prefs);
    assert_eq!(prefs.validate(), Ok(()));
}

#[test]
fn serde_round_trips_and_rejects_unknown_fields() {
    let json = r#"{"push":false,"email":true,"sms":true,
        "quiet_hours":{"start":"22:00","end":"08:00"},
        "time_zone":"Asia/Seoul","hourly_limit":0}"#;
    let prefs: Preferences = serde_json::from_str(json).expect("valid preferences");
    assert!(!prefs.enabled(ChannelKind::Push));
    assert!(prefs.enabled(ChannelKind::Email));
    assert!(prefs.enabled(ChannelKind::Sms));
    assert_eq!(prefs.hourly_limit, 0);
    let back = serde_json::to_value(&prefs).expect("serializes");
    assert_eq!(back["quiet_hours"]["start"], "22:00");
    assert_eq!(back["quiet_hours"]["end"], "08:00");
    assert_eq!(
        serde_json::from_value::<Preferences>(back).ok(),
        Some(prefs)
    );

    assert!(serde_json::from_str::<Preferences>(r#"{"pushh":true}"#).is_err());
    assert!(
        serde_json::from_str::<Preferences>(r#"{"quiet_hours":{"start":"25:00","end":"08:00"}}"#)
            .is_err()
    );
    assert!(
        serde_json::from_str::<Preferences>(
            r#"{"quiet_hours":{"start":"22:00","end":"08:00","tz":"UTC"}}"#
        )
        .is_err()
    );
}

#[test]
fn time_of_day_parses_only_hh_mm() {
    for ok in ["00:00", "07:05", "23:59"] {
        let t: TimeOfDay = ok.parse().expect(ok);
        assert_eq!(t.to_string(), ok);
    }
    assert_eq!(
        "22:30"
            .parse::<TimeOfDay>()
            .map(|t| t.minutes_since_midnight()),
        Ok(1350)
    );
    for bad in [
        "24:00", "7:00", "07:60", "07-00", "", "07:00:00", "ab:cd", "+1:00",
    ] {
        assert_eq!(
            bad.parse::<TimeOfDay>(),
            Err(PreferencesError::InvalidTimeOfDay(bad.to_owned())),
            "{bad}"
        );
    }
}

#[test]
fn channel_kind_names_round_trip() {
    for channel in ChannelKind::ALL {
        assert_eq!(ChannelKind::parse(channel.as_str()), Some(channel));
        let json = serde_json::to_string(&channel).expect("serializes");
        assert_eq!(json, format!("\"{}\"", channel.as_str()));
    }
    assert_eq!(ChannelKind::parse("Push"), None);
    assert_eq!(ChannelKind::parse("fax"), None);
    assert_eq!(
        serde_json::from_str::<Platform>("\"ios\"").ok(),
        Some(Platform::Ios)
    );
    assert!(serde_json::from_str::<Platform>("\"iOS\"").is_err());
}

#[test]
fn validate_rejects_bad_zone_limit_and_empty_window() {
    let mut prefs = Preferences {
        time_zone: "Mars/Olympus_Mons".to_owned(),
        ..Preferences::default()
    };
    assert_eq!(
        prefs.validate(),
        Err(PreferencesError::UnknownTimeZone(
            "Mars/Olympus_Mons".to_owned()
        ))
    );
    prefs.time_zone = String::new();
    assert!(prefs.validate().is_err());
    prefs.time_zone = "America/New_York".to_owned();
    assert_eq!(prefs.validate(), Ok(()));

    prefs.hourly_limit = MAX_HOURLY_LIMIT;
    assert_eq!(prefs.validate(), Ok(()));
    prefs.hourly_limit = MAX_HOURLY_LIMIT + 1;
    assert_eq!(
        prefs.validate(),
        Err(PreferencesError::HourlyLimitTooHigh(1001))
    );

    let same = quiet("UTC", "22:00", "22:00");
    assert!(matches!(
        same.validate(),
        Err(PreferencesError::EmptyQuietHours(_))
    ));
}

#[test]
fn no_quiet_hours_means_never_quiet() {
    let prefs = Preferences::default();
    assert_eq!(until(&prefs, "2025-06-01T03:00:00Z"), None);
}

#[test]
fn unknown_zone_is_an_error() {
    let prefs = quiet("Nowhere/Land", "22:00", "08:00");
    assert!(matches!(
        quiet_until(&prefs, 0),
        Err(PreferencesError::UnknownTimeZone(_))
    ));
}

#[test]
fn daytime_window_has_inclusive_start_and_exclusive_end() {
    let prefs = quiet("UTC", "09:00", "17:00");
    let end = Some(at("2025-06-01T17:00:00Z"));
    assert_eq!(until(&prefs, "2025-06-01T08:59:59.999Z"), None);
    assert_eq!(until(&prefs, "2025-06-01T09:00:00Z"), end);
    assert_eq!(until(&prefs, "2025-06-01T16:59:59.999Z"), end);
    assert_eq!(until(&prefs, "2025-06-01T17:00:00Z"), None);
}

#[test]
fn window_wrapping_midnight_before_and_after_midnight() {
    let prefs = quiet("America/New_York", "22:00", "08:00");
    let next_morning = Some(at("2025-01-16T08:00:00-05:00"));
    assert_eq!(until(&prefs, "2025-01-15T21:59:00-05:00"), None);
    assert_eq!(until(&prefs, "2025-01-15T22:00:00-05:00"), next_morning);
    assert_eq!(until(&prefs, "2025-01-15T23:30:00-05:00"), next_morning);
    assert_eq!(until(&prefs, "2025-01-16T00:00:00-05:00"), next_morning);
    assert_eq!(until(&prefs, "2025-01-16T07:59:00-05:00"), next_morning);
    assert_eq!(until(&prefs, "2025-01-16T08:00:00-05:00"), None);
    assert_eq!(until(&prefs, "2025-01-16T12:00:00-05:00"), None);
}

#[test]
fn night_across_spring_forward_is_an_hour_shorter() {
    let prefs = quiet("America/New_York", "22:00", "08:00");
    let now = "2025-03-08T23:00:00-05:00";
    let end = until(&prefs, now).expect("quiet");
    assert_eq!(end, at("2025-03-09T08:00:00-04:00"));
    assert_eq!(end - at(now), 8 * 3_600_000);
}

#[test]
fn night_across_fall_back_is_an_hour_longer() {
    let prefs = quiet("America/New_York", "22:00", "08:00");
    let now = "2025-11-01T23:00:00-04:00";
    let end = until(&prefs, now).expect("quiet");
    assert_eq!(end, at("2025-11-02T08:00:00-05:00"));
    assert_eq!(end - at(now), 10 * 3_600_000);
}

#[test]
fn end_inside_a_dst_gap_moves_forward_by_the_gap() {
    // 02:30 does not exist in New York on 2025-03-09: clocks jump from 02:00 EST to
    // 03:00 EDT. "Compatible" resolution gives 03:30 EDT, i.e. 07:30 UTC.
    let prefs = quiet("America/New_York", "22:00", "02:30");
    let expected = Some(at("2025-03-09T03:30:00-04:00"));
    assert_eq!(expected, Some(at("2025-03-09T07:30:00Z")));
    assert_eq!(until(&prefs, "2025-03-08T23:00:00-05:00"), expected);
    assert_eq!(until(&prefs, "2025-03-09T01:59:00-05:00"), expected);
    // Just after the jump the local time is 03:00, past the end: not quiet.
    assert_eq!(until(&prefs, "2025-03-09T03:00:00-04:00"), None);
    assert_eq!(until(&prefs, "2025-03-09T03:30:00-04:00"), None);
}

#[test]
fn end_inside_a_fold_is_the_next_occurrence_after_now() {
    // 01:00–02:00 happens twice in New York on 2025-11-02 (EDT, then EST).
    let prefs = quiet("America/New_York", "00:30", "01:30");
    assert_eq!(
        until(&prefs, "2025-11-02T01:15:00-04:00"),
        Some(at("2025-11-02T01:30:00-04:00"))
    );
    // The second 01:15 is quiet again by the wall clock; the first 01:30 has passed.
    assert_eq!(
        until(&prefs, "2025-11-02T01:15:00-05:00"),
        Some(at("2025-11-02T01:30:00-05:00"))
    );
    assert_eq!(until(&prefs, "2025-11-02T01:30:00-04:00"), None);
}

#[test]
fn seoul_has_no_dst() {
    let prefs = quiet("Asia/Seoul", "23:00", "07:00");
    let end = Some(at("2025-06-02T07:00:00+09:00"));
    assert_eq!(until(&prefs, "2025-06-01T23:30:00+09:00"), end);
    // The same instant written in UTC.
    assert_eq!(until(&prefs, "2025-06-01T14:30:00Z"), end);
    assert_eq!(until(&prefs, "2025-06-02T06:59:00+09:00"), end);
    assert_eq!(until(&prefs, "2025-06-02T07:00:00+09:00"), None);
    assert_eq!(until(&prefs, "2025-06-01T22:59:00+09:00"), None);
}

fn ios_device(token: &str) -> Device {
    Device {
        device_id: "iphone-1".to_owned(),
        platform: Platform::Ios,
        push_token: token.to_owned(),
        app_version: Some("3.2.1 (451)".to_owned()),
    }
}

#[test]
fn apns_tokens_are_64_to_200_hex_digits() {
    assert_eq!(ios_device(&"a1".repeat(32)).validate(), Ok(()));
    assert_eq!(ios_device(&"F".repeat(200)).validate(), Ok(()));
    for bad in [
        "a".repeat(63),
        "a".repeat(201),
        format!("{}g", "a".repeat(63)),
    ] {
        assert!(matches!(
            ios_device(&bad).validate(),
            Err(PreferencesError::InvalidPushToken {
                platform: Platform::Ios,
                ..
            })
        ));
    }
}

#[test]
fn fcm_tokens_for_android_and_web() {
    let token = "dGVzdA:APA91bH-x_y.z";
    for platform in [Platform::Android, Platform::Web] {
        let mut device = Device {
            device_id: "pixel:8.a_b-c".to_owned(),
            platform,
            push_token: token.to_owned(),
            app_version: None,
        };
        assert_eq!(device.validate(), Ok(()));
        device.push_token = "x".repeat(4096);
        assert_eq!(device.validate(), Ok(()));
        for bad in [
            String::new(),
            "x".repeat(4097),
            "has space".to_owned(),
            "a/b".to_owned(),
        ] {
            device.push_token = bad;
            assert!(device.validate().is_err());
        }
    }
}

#[test]
fn device_id_and_app_version_are_checked() {
    let token = "a".repeat(64);
    let mut device = ios_device(&token);
    for bad in [
        String::new(),
        "x".repeat(65),
        "id with space".to_owned(),
        "ü".to_owned(),
    ] {
        device.device_id = bad.clone();
        assert_eq!(
            device.validate(),
            Err(PreferencesError::InvalidDeviceId(bad))
        );
    }
    device.device_id = "x".repeat(64);
    assert_eq!(device.validate(), Ok(()));
    device.app_version = Some(String::new());
    assert!(matches!(
        device.validate(),
        Err(PreferencesError::InvalidAppVersion(_))
    ));
    let json =
        format!(r#"{{"device_id":"d1","platform":"android","push_token":"{token}","extra":1}}"#);
    assert!(serde_json::from_str::<Device>(&json).is_err());
}

#[test]
fn contact_email_shapes() {
    let ok = |email: &str| Contact {
        email: Some(email.to_owned()),
        phone: None,
    };
    assert_eq!(ok("ada@example.com").validate(), Ok(()));
    assert_eq!(ok("a.b+tag@mail.example.co.uk").validate(), Ok(()));
    let long_domain = format!("a@{}.com", "d".repeat(250));
    for bad in [
        "",
        "ada",
        "ada@",
        "@example.com",
        "ada@example",
        "ada@@example.com",
        "ada@exa@mple.com",
        "ada@example..com",
        "ada@.com",
        "ada@example.com.",
        "ada lovelace@example.com",
        long_domain.as_str(),
    ] {
        assert_eq!(
            ok(bad).validate(),
            Err(PreferencesError::InvalidEmail(bad.to_owned())),
            "{bad}"
        );
    }
    assert_eq!(Contact::default().validate(), Ok(()));
}

#[test]
fn contact_phone_is_e164() {
    let phone = |p: &str| Contact {
        email: None,
        phone: Some(p.to_owned()),
    };
    for good in [
        "+14155550100",
        "+82212345678",
        "+12345678",
        "+123456789012345",
    ] {
        assert_eq!(phone(good).validate(), Ok(()), "{good}");
    }
    for bad in [
        "14155550100",
        "+1234567",
        "+1234567890123456",
        "+0123456789",
        "+1 415 555 0100",
        "+1415555010a",
        "+",
    ] {
        assert_eq!(
            phone(bad).validate(),
            Err(PreferencesError::InvalidPhone(bad.to_owned())),
            "{bad}"
        );
    }
}

const ZONES: &[&str] = &[
    "UTC",
    "America/New_York",
    "America/Sao_Paulo",
    "America/Santiago",
    "Europe/London",
    "Asia/Seoul",
    "Asia/Kolkata",
    "Australia/Sydney",
    "Australia/Lord_Howe",
];

/// An instant near one of the zone's transitions, so that DST days are well covered.
fn near_transition(zone: &str, base_ms: i64, offset_ms: i64) -> i64 {
    let tz = time_zone(zone).expect("zone in list");
    let base = Timestamp::from_millisecond(base_ms).expect("in range");
    let pivot = tz.following(base).next().map_or(base, |t| t.timestamp());
    pivot.as_millisecond() + offset_ms
}

proptest! {
    #[test]
    fn quiet_until_ends_soon_after_now_and_is_not_quiet_then(
        zone in proptest::sample::select(ZONES),
        quiet_end in 0u16..1440,
        // The non-quiet part of the day is longer than any DST jump in these zones, so a
        // jump cannot swallow it.
        awake in 61u16..1440,
        base_ms in 946_684_800_000i64..2_208_988_800_000,
        offset_ms in -26 * 3_600_000i64..26 * 3_600_000,
        near_dst in any::<bool>(),
    ) {
        let quiet_start = (quiet_end + awake) % 1440;
        let time_of_day = |m: u16| TimeOfDay::new((m / 60) as u8, (m % 60) as u8).expect("valid");
        let prefs = Preferences {
            quiet_hours: Some(QuietHours {
                start: time_of_day(quiet_start),
                end: time_of_day(quiet_end),
            }),
            time_zone: zone.to_owned(),
            ..Preferences::default()
        };
        prop_assert_eq!(prefs.validate(), Ok(()));
        let now = if near_dst { near_transition(zone, base_ms, offset_ms) } else { base_ms };
        if let Some(until) = quiet_until(&prefs, now).expect("resolves") {
            prop_assert!(until > now, "until {} not after now {}", until, now);
            prop_assert!(until - now <= 25 * 3_600_000, "until {} too far from now {}", until, now);
            prop_assert_eq!(quiet_until(&prefs, until).expect("resolves"), None);
        }
    }
}
