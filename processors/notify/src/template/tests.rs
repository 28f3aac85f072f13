use super::*;
use serde_json::json;

const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../templates");

fn shipped() -> Templates {
    Templates::load(Path::new(SHIPPED)).expect("shipped templates load")
}

/// A template folder made of `(relative path, contents)` pairs.
fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (path, contents) in files {
        let path = dir.path().join(path);
        fs::create_dir_all(path.parent().expect("parent")).expect("create folder");
        fs::write(path, contents).expect("write template");
    }
    dir
}

fn load(files: &[(&str, &str)]) -> Result<Templates, TemplateError> {
    Templates::load(folder(files).path())
}

fn sms_body(message: RenderedMessage) -> String {
    match message.content {
        Rendered::Sms { body } => body,
        other => panic!("expected an SMS, got {other:?}"),
    }
}

/// Renders `source` as a text part in `locale` with `value` bound to `x`.
fn format(locale: &str, source: &str, value: Json) -> String {
    let mut env = engine();
    env.add_template_owned("t/sms.x.body", source.to_owned())
        .expect("compiles");
    let fields = json!({ "x": value });
    let context = template_context(fields.as_object().expect("object"), locale);
    let template = env.get_template("t/sms.x.body").expect("template");
    template.render(context).expect("renders")
}

#[test]
fn seed_example_renders_exactly() {
    let data = json!({"order_id": "ORD456", "amount": 50000});
    let message = shipped()
        .render("order_confirmed", Channel::Push, Some("ko-KR"), &data)
        .expect("renders");
    assert_eq!(message.locale, "ko-KR");
    assert_eq!(
        message.content,
        Rendered::Push {
            title: "주문 확인".to_owned(),
            body: "주문 ORD456가 확인되었습니다. 금액: 50,000원".to_owned(),
        }
    );
}

#[test]
fn every_shipped_template_renders() {
    let templates = shipped();
    let data = json!({"order_id": "ORD456", "amount": 50000, "name": "Mina"});
    let mut rendered = 0;
    for id in ["order_confirmed", "welcome"] {
        for channel in [Channel::Push, Channel::Email, Channel::Sms] {
            for locale in ["ko-KR", "en-US"] {
                let message = templates
                    .render(id, channel, Some(locale), &data)
                    .expect("renders");
                assert!(!format!("{:?}", message.content).contains("{{"));
                rendered += 1;
            }
        }
    }
    assert_eq!(rendered, 12);
    let email = templates
        .render("order_confirmed", Channel::Email, Some("en-US"), &data)
        .expect("renders");
    let Rendered::Email {
        subject,
        text,
        html,
    } = email.content
    else {
        panic!("expected an email");
    };
    assert_eq!(subject, "[Sixfold] Order ORD456 confirmed");
    assert!(text.contains("Total: ₩50,000"), "{text}");
    assert!(html.expect("html part").contains("<strong>ORD456</strong>"));
    let sms = templates
        .render("order_confirmed", Channel::Sms, Some("ko-KR"), &data)
        .expect("renders");
    assert_eq!(
        sms_body(sms),
        "[Sixfold] 주문 ORD456 확인 완료. 결제 금액 50,000원"
    );
}

#[test]
fn locale_chain_goes_region_language_default_english() {
    let templates = shipped();
    assert_eq!(
        templates.locale_chain(Some("ko-KR")).expect("valid"),
        ["ko-KR", "ko", "en-US", "en"]
    );
    assert_eq!(
        templates.locale_chain(Some("ko_kr")).expect("valid")[0],
        "ko-KR"
    );
    assert_eq!(
        templates.locale_chain(None).expect("valid"),
        ["en-US", "en"]
    );
    let german = shipped().with_default_locale("de-DE").expect("valid");
    assert_eq!(
        german.locale_chain(Some("en-US")).expect("valid"),
        ["en-US", "en", "de-DE", "de"]
    );
}

#[test]
fn falls_back_through_the_chain() {
    let dir = folder(&[
        ("note/sms.ko.body.j2", "ko {{ n|number }}"),
        ("note/sms.de-DE.body.j2", "de {{ n|number }}"),
        ("note/sms.en.body.j2", "en {{ n|number }}"),
    ]);
    let templates = Templates::load(dir.path()).expect("loads");
    let data = json!({"n": 1234.5});
    let render = |templates: &Templates, locale| {
        let message = templates
            .render("note", Channel::Sms, locale, &data)
            .expect("renders");
        (message.locale.clone(), sms_body(message))
    };
    // Region missing: its language; numbers follow the locale used.
    assert_eq!(
        render(&templates, Some("ko-KR")),
        ("ko".into(), "ko 1,234.5".into())
    );
    // Nothing for ja: no en-US either, so `en`.
    assert_eq!(
        render(&templates, Some("ja-JP")),
        ("en".into(), "en 1,234.5".into())
    );
    assert_eq!(render(&templates, None), ("en".into(), "en 1,234.5".into()));
    let german = Templates::load(dir.path())
        .and_then(|t| t.with_default_locale("de-DE"))
        .expect("loads");
    assert_eq!(
        render(&german, Some("ja-JP")),
        ("de-DE".into(), "de 1.234,5".into())
    );
    assert_eq!(
        render(&german, Some("en-GB")),
        ("en".into(), "en 1,234.5".into())
    );
}

#[test]
fn missing_or_null_variable_is_an_error_naming_it() {
    let templates = shipped();
    for data in [
        json!({"order_id": "ORD456"}),
        json!({"order_id": "ORD456", "amount": null}),
    ] {
        let error = templates
            .render("order_confirmed", Channel::Push, Some("ko-KR"), &data)
            .expect_err("must not render");
        let TemplateError::Render { variable, .. } = &error else {
            panic!("expected a render error, got {error}");
        };
        assert_eq!(variable.as_deref(), Some("amount"));
        assert!(error.to_string().contains("`amount`"), "{error}");
    }
    let error = templates
        .render("welcome", Channel::Sms, None, &json!({"name": null}))
        .expect_err("null must not print");
    assert!(
        error.to_string().contains("variable `name` is null"),
        "{error}"
    );

    let nested = load(&[("hi/sms.en.body.j2", "Hi {{ user.name }}")]).expect("loads");
    let error = nested
        .render("hi", Channel::Sms, None, &json!({"user": {"id": 1}}))
        .expect_err("missing attribute");
    assert!(
        error
            .to_string()
            .contains("variable `user.name` is undefined"),
        "{error}"
    );
}

#[test]
fn missing_template_is_not_found() {
    let templates = load(&[("only_sms/sms.en-US.body.j2", "hello")]).expect("loads");
    for (id, channel) in [("only_sms", Channel::Push), ("no_such", Channel::Sms)] {
        let error = templates
            .render(id, channel, Some("ko-KR"), &json!({}))
            .expect_err("not found");
        assert!(
            matches!(&error, TemplateError::NotFound { template_id, channel: c }
                if template_id == id && *c == channel),
            "{error}"
        );
    }
}

#[test]
fn syntax_error_at_load_names_the_file() {
    let error = load(&[
        ("good/sms.en.body.j2", "fine"),
        ("broken/push.en-US.title.j2", "Hi"),
        ("broken/push.en-US.body.j2", "Hi {{ name "),
    ])
    .expect_err("must not load");
    let TemplateError::Syntax { path, .. } = &error else {
        panic!("expected a syntax error, got {error}");
    };
    assert!(path.ends_with("broken/push.en-US.body.j2"));
    let message = error.to_string();
    assert!(
        message.contains("push.en-US.body.j2") && message.contains("line 1"),
        "{message}"
    );
}

#[test]
fn layout_mistakes_fail_the_load() {
    let cases: [(&[(&str, &str)], &str); 6] = [
        (
            &[("x/push.en-US.body.j2", "b")],
            "push.en-US has no title part",
        ),
        (
            &[("x/push.en-US.subject.j2", "s")],
            "push templates have no part",
        ),
        (&[("x/fax.en-US.body.j2", "b")], "unknown channel"),
        (&[("x/sms.pt-BR.body.j2", "b")], "no number formats"),
        (&[("x/sms.english.body.j2", "b")], "not a locale tag"),
        (&[("Bad-Id/sms.en.body.j2", "b")], "not a template id"),
    ];
    for (files, expected) in cases {
        let error = load(files).expect_err("must not load");
        assert!(matches!(error, TemplateError::Layout { .. }), "{error}");
        assert!(
            error.to_string().contains(expected),
            "{error} lacks {expected}"
        );
    }
    let empty = tempfile::tempdir().expect("temp dir");
    assert!(Templates::load(empty.path()).is_err());
    assert!(matches!(
        Templates::load(&empty.path().join("absent")),
        Err(TemplateError::Io { .. })
    ));
}

#[test]
fn number_filter_per_locale() {
    let cases = [
        ("en-US", json!(50000), "50,000"),
        ("ko-KR", json!(50000), "50,000"),
        ("ja-JP", json!(50000), "50,000"),
        ("de-DE", json!(50000), "50.000"),
        ("fr-FR", json!(50000), "50\u{202F}000"),
        ("en-US", json!(1234.5), "1,234.5"),
        ("de-DE", json!(1234.5), "1.234,5"),
        ("fr-FR", json!(-1234567.25), "-1\u{202F}234\u{202F}567,25"),
        ("en-US", json!(-1234), "-1,234"),
        ("ko-KR", json!(999), "999"),
        ("en", json!(0.5), "0.5"),
        ("de", json!("12345.50"), "12.345,50"),
        ("en-US", json!(u64::MAX), "18,446,744,073,709,551,615"),
    ];
    for (locale, value, expected) in cases {
        assert_eq!(
            format(locale, "{{ x|number }}", value.clone()),
            expected,
            "{locale} {value}"
        );
    }
    assert_eq!(format("en-US", "{{ x|number(2) }}", json!(1.005)), "1.01");
    assert_eq!(format("de-DE", "{{ x|number(2) }}", json!(9.995)), "10,00");
    assert_eq!(format("en-US", "{{ x|number(0) }}", json!(999.5)), "1,000");
    assert_eq!(format("en-US", "{{ x|number(2) }}", json!(-0.001)), "0.00");
    assert_eq!(format("en-US", "{{ x|number(1) }}", json!(7)), "7.0");
}

#[test]
fn currency_filter_per_locale_and_currency() {
    let nbsp = '\u{A0}';
    let cases = [
        ("ko-KR", "KRW", json!(50000), "50,000원".to_owned()),
        ("en-US", "KRW", json!(50000), "₩50,000".to_owned()),
        ("ja-JP", "KRW", json!(50000), "₩50,000".to_owned()),
        ("de-DE", "KRW", json!(50000), format!("50.000{nbsp}₩")),
        (
            "fr-FR",
            "KRW",
            json!(50000),
            format!("50\u{202F}000{nbsp}KRW"),
        ),
        ("en-US", "USD", json!(12.5), "$12.50".to_owned()),
        ("ko-KR", "USD", json!(12.5), "US$12.50".to_owned()),
        ("ja-JP", "USD", json!(12.5), "$12.50".to_owned()),
        ("de-DE", "USD", json!(12.5), format!("12,50{nbsp}$")),
        ("fr-FR", "USD", json!(12.5), format!("12,50{nbsp}$US")),
        ("en-US", "EUR", json!(-1234.5), "-€1,234.50".to_owned()),
        ("ko-KR", "EUR", json!(-1234.5), "-€1,234.50".to_owned()),
        ("de-DE", "EUR", json!(-1234.5), format!("-1.234,50{nbsp}€")),
        (
            "fr-FR",
            "EUR",
            json!(-1234.5),
            format!("-1\u{202F}234,50{nbsp}€"),
        ),
        ("ja-JP", "JPY", json!(5000), "5,000円".to_owned()),
        ("en-US", "JPY", json!(5000.4), "¥5,000".to_owned()),
        ("ko-KR", "JPY", json!(-5000), "-JP¥5,000".to_owned()),
        ("de-DE", "JPY", json!(5000), format!("5.000{nbsp}¥")),
        (
            "fr-FR",
            "JPY",
            json!(5000),
            format!("5\u{202F}000{nbsp}JPY"),
        ),
        ("ko-KR", "KRW", json!(-49999.5), "-50,000원".to_owned()),
        ("en-US", "USD", json!("0.005"), "$0.01".to_owned()),
        ("ko", "KRW", json!(1000), "1,000원".to_owned()),
    ];
    for (locale, code, value, expected) in cases {
        let source = format!("{{{{ x|currency({code:?}) }}}}");
        assert_eq!(
            format(locale, &source, value.clone()),
            expected,
            "{locale} {code} {value}"
        );
    }
}

#[test]
fn filters_refuse_bad_input() {
    let templates = load(&[
        ("gbp/sms.en-US.body.j2", "{{ x|currency(\"GBP\") }}"),
        ("num/sms.en-US.body.j2", "{{ x|number }}"),
    ])
    .expect("loads");
    let render = |id, x: Json| templates.render(id, Channel::Sms, None, &json!({ "x": x }));
    let error = render("gbp", json!(1)).expect_err("GBP unsupported");
    assert!(
        error.to_string().contains("unsupported currency \"GBP\""),
        "{error}"
    );
    for bad in [json!("12,5"), json!("abc"), json!(true), json!([1])] {
        assert!(matches!(
            render("num", bad),
            Err(TemplateError::Render { .. })
        ));
    }
}

#[test]
fn html_is_escaped_in_the_html_part_only() {
    let name = "<b>Tom & \"Jerry\"</b>";
    let message = shipped()
        .render("welcome", Channel::Email, None, &json!({ "name": name }))
        .expect("renders");
    let Rendered::Email {
        subject,
        text,
        html,
    } = message.content
    else {
        panic!("expected an email");
    };
    assert_eq!(subject, format!("Welcome to Sixfold, {name}"));
    assert!(text.starts_with(&format!("Hi {name},")), "{text}");
    let html = html.expect("html part");
    assert!(
        html.contains("<p>Hi &lt;b&gt;Tom &amp; &quot;Jerry&quot;&lt;&#x2f;b&gt;,</p>"),
        "{html}"
    );
    assert!(!html.contains(name));
}

#[test]
fn subject_must_be_one_line() {
    let error = shipped()
        .render(
            "welcome",
            Channel::Email,
            None,
            &json!({"name": "Eve\r\nBcc: x@example.com"}),
        )
        .expect_err("line break in subject");
    assert!(matches!(error, TemplateError::LineBreak { .. }), "{error}");
}

#[test]
fn length_limits() {
    let templates = load(&[
        ("long/sms.en.body.j2", "{{ text }}"),
        ("long/push.en.title.j2", "t"),
        ("long/push.en.body.j2", "{{ text }}"),
    ])
    .expect("loads");
    let render =
        |channel, text: String| templates.render("long", channel, None, &json!({ "text": text }));
    // Characters, not bytes: 1600 Hangul syllables are 4800 bytes and still fit.
    assert!(render(Channel::Sms, "가".repeat(SMS_BODY_MAX_CHARS)).is_ok());
    let error = render(Channel::Sms, "a".repeat(SMS_BODY_MAX_CHARS + 1)).expect_err("too long");
    assert!(
        matches!(
            error,
            TemplateError::TooLong {
                actual: 1601,
                limit: 1600,
                ..
            }
        ),
        "{error}"
    );
    assert!(render(Channel::Push, "a".repeat(PUSH_BODY_MAX_BYTES)).is_ok());
    let error = render(Channel::Push, "가".repeat(1366)).expect_err("4098 bytes");
    assert!(
        matches!(error, TemplateError::TooLong { unit: "bytes", .. }),
        "{error}"
    );
}

#[test]
fn invalid_ids_locales_and_data_are_refused() {
    let templates = shipped();
    let data = json!({"order_id": "ORD456", "amount": 1});
    for id in [
        "",
        "../welcome",
        "welcome/..",
        "Welcome",
        "a.b",
        "a b",
        &"a".repeat(65),
    ] {
        assert!(
            matches!(
                templates.render(id, Channel::Sms, None, &data),
                Err(TemplateError::InvalidTemplateId(_))
            ),
            "{id:?}"
        );
    }
    for locale in [
        "",
        "../../etc",
        "ko-KR/..",
        "k",
        "korean",
        "ko-KR-x",
        "ko-K1",
        "en-US.j2",
    ] {
        assert!(
            matches!(
                templates.render("welcome", Channel::Sms, Some(locale), &data),
                Err(TemplateError::InvalidLocale(_))
            ),
            "{locale:?}"
        );
    }
    assert!(matches!(
        shipped().with_default_locale("../x"),
        Err(TemplateError::InvalidLocale(_))
    ));
    assert!(matches!(
        templates.render("welcome", Channel::Sms, None, &json!([1])),
        Err(TemplateError::DataNotObject("an array"))
    ));
    assert_eq!("email".parse::<Channel>().expect("known"), Channel::Email);
    assert!("fax".parse::<Channel>().is_err());
}
