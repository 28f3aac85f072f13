//! Notification templates: MiniJinja templates per template id, channel and locale, read and
//! compiled once at start and rendered with strict variables and locale-aware number and
//! currency filters.
//!
//! # Layout
//! `templates/<template_id>/<channel>.<locale>.<part>.j2`, with the parts `title` and `body` for
//! `push`, `subject`, `text` and an optional `html` for `email`, and `body` for `sms`. A template
//! id is 1 to 64 of `a-z`, `0-9` and `_`; a locale is a language (`en`) or language-region
//! (`ko-KR`) that the formatting table below knows. Anything else in a template folder, a set
//! with a missing part, or a file that does not compile stops [`Templates::load`] with an error
//! naming the file. Files and folders starting with `.` and plain files at the top level (a
//! README) are skipped.
//!
//! # Locale fallback
//! A request for `ko-KR` tries `ko-KR`, `ko`, the default locale ([`DEFAULT_LOCALE`] unless
//! [`Templates::with_default_locale`] says otherwise), its language, then `en`; the first locale
//! with a complete set for the channel wins and is reported in [`RenderedMessage::locale`]. The
//! filters format numbers for that locale, so the figures match the language of the text.
//!
//! # Rendering
//! Undefined variables are errors ([`UndefinedBehavior::Strict`]) and so is printing a JSON
//! `null`; the error names the variable where it can be found. Only `html` parts are
//! HTML-escaped. Subjects and push titles are trimmed and must be one line.
//!
//! # Filters
//! `{{ x|number }}` groups digits and keeps the decimals it is given (`1,234.5`, de-DE
//! `1.234,5`); `{{ x|number(2) }}` rounds to fixed decimals; `{{ x|currency("KRW") }}` rounds to
//! the currency's decimals and adds its symbol (ko-KR `50,000원`, en-US `₩50,000`). Values may
//! be JSON numbers or decimal strings (`"12.50"`). Rounding is half away from zero, on the
//! decimal digits, so `1.005` rounds to `1.01`. The rules come from a small explicit table of
//! locales (en-US, ko-KR, ja-JP, de-DE, fr-FR) and currencies (KRW, JPY, USD, EUR) rather than
//! ICU data: adding one is adding rows.
//!
//! # Limits
//! An SMS body over [`SMS_BODY_MAX_CHARS`] characters and a push body over
//! [`PUSH_BODY_MAX_BYTES`] bytes are errors, since the providers would refuse them.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use minijinja::value::Value;
use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior};
use serde_json::{Map, Value as Json};

/// Locale tried after the requested one when [`Templates::with_default_locale`] is not used.
pub const DEFAULT_LOCALE: &str = "en-US";
/// Twilio refuses message bodies longer than this many characters.
pub const SMS_BODY_MAX_CHARS: usize = 1600;
/// APNs refuses payloads over 4 KiB, so a longer body can never be delivered.
pub const PUSH_BODY_MAX_BYTES: usize = 4096;

/// Locale tried last, after the default locale and its language.
const LAST_RESORT_LOCALE: &str = "en";
/// Context variable through which the filters learn the locale of the template being rendered.
const LOCALE_VAR: &str = "__locale__";
const MAX_TEMPLATE_ID_LEN: usize = 64;
/// Upper bound for `number(decimals)`, so a typo cannot ask for a huge string.
const MAX_DECIMALS: u32 = 12;

/// A delivery channel; each has its own template parts.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// Mobile push (APNs, FCM): `title` and `body`.
    Push,
    /// Email: `subject`, `text` and an optional `html`.
    Email,
    /// SMS: `body`.
    Sms,
}

impl Channel {
    /// The channel's name as used in template file names: `push`, `email` or `sms`.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Push => "push",
            Channel::Email => "email",
            Channel::Sms => "sms",
        }
    }

    /// The parts of this channel, each with whether a set must have it.
    fn parts(self) -> &'static [(Part, bool)] {
        match self {
            Channel::Push => &[(Part::Title, true), (Part::Body, true)],
            Channel::Email => &[
                (Part::Subject, true),
                (Part::Text, true),
                (Part::Html, false),
            ],
            Channel::Sms => &[(Part::Body, true)],
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Channel {
    type Err = TemplateError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "push" => Ok(Channel::Push),
            "email" => Ok(Channel::Email),
            "sms" => Ok(Channel::Sms),
            _ => Err(TemplateError::UnknownChannel(name.to_owned())),
        }
    }
}

/// One file of a template set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Title,
    Body,
    Subject,
    Text,
    Html,
}

impl Part {
    fn as_str(self) -> &'static str {
        match self {
            Part::Title => "title",
            Part::Body => "body",
            Part::Subject => "subject",
            Part::Text => "text",
            Part::Html => "html",
        }
    }
}

/// The rendered texts of one notification, shaped by channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rendered {
    /// A push notification.
    Push {
        /// One-line title.
        title: String,
        /// Body text.
        body: String,
    },
    /// An email.
    Email {
        /// One-line subject.
        subject: String,
        /// Plain-text body.
        text: String,
        /// HTML body, when the template set has an `html` part.
        html: Option<String>,
    },
    /// A text message.
    Sms {
        /// Message text.
        body: String,
    },
}

/// A rendered notification and the locale whose templates produced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedMessage {
    /// The locale that was used after fallback, e.g. `en-US` for a `ja-JP` request.
    pub locale: String,
    /// The rendered texts.
    pub content: Rendered,
}

/// Why templates could not be loaded or a notification could not be rendered. Render errors
/// are permanent: the same data and templates fail the same way on every retry.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The template folder or one of its files could not be read.
    #[error("cannot read {}", path.display())]
    Io {
        /// File or folder that failed.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// A file or folder in the template folder does not follow the layout.
    #[error("{}: {reason}", path.display())]
    Layout {
        /// File or folder at fault.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A template file does not compile.
    #[error("syntax error in {}: {detail}", path.display())]
    Syntax {
        /// The template file.
        path: PathBuf,
        /// The engine's message, with the line.
        detail: String,
    },
    /// A template id that could not name a template folder (e.g. `../x`).
    #[error("invalid template id {0:?}: expected 1 to 64 of a-z, 0-9 and _")]
    InvalidTemplateId(String),
    /// A locale tag that is not `ll` or `ll-RR`.
    #[error("invalid locale tag {0:?}: expected a language like `en` or `ko-KR`")]
    InvalidLocale(String),
    /// A channel name other than `push`, `email` or `sms`.
    #[error("unknown channel {0:?}: expected push, email or sms")]
    UnknownChannel(String),
    /// No locale of the fallback chain has this template for this channel.
    #[error("no {channel} template {template_id:?} in any fallback locale")]
    NotFound {
        /// The requested template id.
        template_id: String,
        /// The requested channel.
        channel: Channel,
    },
    /// The template data was not a JSON object.
    #[error("template data must be a JSON object, got {0}")]
    DataNotObject(&'static str),
    /// The engine failed while rendering, most often on a missing variable.
    #[error("cannot render {template}: {reason}")]
    Render {
        /// Template name, `<id>/<channel>.<locale>.<part>`.
        template: String,
        /// The variable that is missing or null, when it could be found.
        variable: Option<String>,
        /// What went wrong.
        reason: String,
    },
    /// A rendered part is longer than its provider accepts.
    #[error("{template} renders to {actual} {unit}, over the limit of {limit}")]
    TooLong {
        /// Template name, `<id>/<channel>.<locale>.<part>`.
        template: String,
        /// Rendered length.
        actual: usize,
        /// Largest length accepted.
        limit: usize,
        /// `characters` or `bytes`.
        unit: &'static str,
    },
    /// A subject or push title came out with a line break.
    #[error("{template} must render to one line")]
    LineBreak {
        /// Template name, `<id>/<channel>.<locale>.<part>`.
        template: String,
    },
}

/// All notification templates, compiled, with the default locale for fallback.
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
    /// Complete sets by `<id>/<channel>.<locale>`, with whether the set has an `html` part.
    sets: HashMap<String, bool>,
    default_locale: String,
}

impl Templates {
    /// Reads and compiles every template under `dir` (see the module docs for the layout).
    pub fn load(dir: &Path) -> Result<Templates, TemplateError> {
        let mut env = engine();
        // Parts found per set, with the folder to name if the set is incomplete.
        let mut found: BTreeMap<String, (PathBuf, Channel, Vec<Part>)> = BTreeMap::new();
        for (id, folder, is_dir) in list_dir(dir)? {
            if !is_dir {
                continue;
            }
            if !is_valid_template_id(&id) {
                return Err(layout(
                    &folder,
                    "folder name is not a template id (a-z, 0-9, _)",
                ));
            }
            for (file_name, path, is_dir) in list_dir(&folder)? {
                if is_dir {
                    return Err(layout(&path, "template folders hold files only"));
                }
                let (channel, locale, part) =
                    parse_file_name(&file_name).map_err(|reason| layout(&path, &reason))?;
                let source = fs::read_to_string(&path).map_err(|source| TemplateError::Io {
                    path: path.clone(),
                    source,
                })?;
                let set = set_key(&id, channel, locale);
                env.add_template_owned(format!("{set}.{}", part.as_str()), source)
                    .map_err(|error| TemplateError::Syntax {
                        path: path.clone(),
                        detail: engine_detail(&error),
                    })?;
                found
                    .entry(set)
                    .or_insert_with(|| (folder.clone(), channel, Vec::new()))
                    .2
                    .push(part);
            }
        }
        if found.is_empty() {
            return Err(layout(dir, "no templates found"));
        }
        let mut sets = HashMap::with_capacity(found.len());
        for (set, (folder, channel, parts)) in found {
            for (part, required) in channel.parts() {
                if *required && !parts.contains(part) {
                    let file_set = set.rsplit('/').next().unwrap_or(&set);
                    let reason = format!("{file_set} has no {} part", part.as_str());
                    return Err(layout(&folder, &reason));
                }
            }
            sets.insert(set, parts.contains(&Part::Html));
        }
        Ok(Templates {
            env,
            sets,
            default_locale: DEFAULT_LOCALE.to_owned(),
        })
    }

    /// Uses `locale` instead of [`DEFAULT_LOCALE`] as the fallback after the requested locale.
    pub fn with_default_locale(mut self, locale: &str) -> Result<Templates, TemplateError> {
        self.default_locale =
            canonical_locale(locale).ok_or_else(|| TemplateError::InvalidLocale(locale.into()))?;
        Ok(self)
    }

    /// The locale tried after the requested one.
    pub fn default_locale(&self) -> &str {
        &self.default_locale
    }

    /// Renders `template_id` for `channel` in the best locale for `locale` (the default locale
    /// when `None`) with the fields of the JSON object `data`.
    pub fn render(
        &self,
        template_id: &str,
        channel: Channel,
        locale: Option<&str>,
        data: &Json,
    ) -> Result<RenderedMessage, TemplateError> {
        if !is_valid_template_id(template_id) {
            return Err(TemplateError::InvalidTemplateId(template_id.to_owned()));
        }
        let Json::Object(fields) = data else {
            return Err(TemplateError::DataNotObject(json_kind(data)));
        };
        let (locale, has_html) = self
            .locale_chain(locale)?
            .into_iter()
            .find_map(|tag| {
                let has_html = *self.sets.get(&set_key(template_id, channel, &tag))?;
                Some((tag, has_html))
            })
            .ok_or_else(|| TemplateError::NotFound {
                template_id: template_id.to_owned(),
                channel,
            })?;
        let set = set_key(template_id, channel, &locale);
        let context = template_context(fields, &locale);
        let render = |part: Part| self.render_part(&set, part, &context, fields);
        let one_line = |part: Part| render(part).and_then(|text| single_line(&set, part, text));
        let content = match channel {
            Channel::Push => Rendered::Push {
                title: one_line(Part::Title)?,
                body: render(Part::Body)?,
            },
            Channel::Email => Rendered::Email {
                subject: one_line(Part::Subject)?,
                text: render(Part::Text)?,
                html: if has_html {
                    Some(render(Part::Html)?)
                } else {
                    None
                },
            },
            Channel::Sms => Rendered::Sms {
                body: render(Part::Body)?,
            },
        };
        check_limits(&set, &content)?;
        Ok(RenderedMessage { locale, content })
    }

    /// Locales to try for a request, best first, without repeats.
    fn locale_chain(&self, requested: Option<&str>) -> Result<Vec<String>, TemplateError> {
        let mut chain = Vec::with_capacity(5);
        if let Some(requested) = requested {
            let tag = canonical_locale(requested)
                .ok_or_else(|| TemplateError::InvalidLocale(requested.to_owned()))?;
            push_unique(&mut chain, &tag);
            push_unique(&mut chain, language(&tag));
        }
        push_unique(&mut chain, &self.default_locale);
        push_unique(&mut chain, language(&self.default_locale));
        push_unique(&mut chain, LAST_RESORT_LOCALE);
        Ok(chain)
    }

    fn render_part(
        &self,
        set: &str,
        part: Part,
        context: &Value,
        fields: &Map<String, Json>,
    ) -> Result<String, TemplateError> {
        let name = format!("{set}.{}", part.as_str());
        let render_error = |variable: Option<(String, &str)>, error: &minijinja::Error| {
            let reason = match &variable {
                Some((path, problem)) => format!("variable `{path}` is {problem}"),
                None => engine_detail(error),
            };
            TemplateError::Render {
                template: name.clone(),
                variable: variable.map(|(path, _)| path),
                reason,
            }
        };
        let template = self
            .env
            .get_template(&name)
            .map_err(|error| render_error(None, &error))?;
        template.render(context.clone()).map_err(|error| {
            let variable = (error.kind() == ErrorKind::UndefinedError)
                .then(|| find_unusable_variable(&template, fields, &self.env))
                .flatten();
            render_error(variable, &error)
        })
    }
}

/// A MiniJinja environment with this module's rules: strict variables, HTML escaping for
/// `html` parts only, `null` refused in output, and the formatting filters.
fn engine() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    // A JSON null would otherwise print as "none" in a customer's message.
    env.set_formatter(|out, state, value| {
        if value.is_none() {
            return Err(minijinja::Error::new(
                ErrorKind::UndefinedError,
                "a null value cannot be printed",
            ));
        }
        minijinja::escape_formatter(out, state, value)
    });
    env.add_filter("number", number_filter);
    env.add_filter("currency", currency_filter);
    env
}

/// Entries of `dir` as (name, path, is a folder), sorted by name, without hidden ones.
/// Symlinks are followed, as mounted config volumes are made of them.
fn list_dir(dir: &Path) -> Result<Vec<(String, PathBuf, bool)>, TemplateError> {
    let io_error = |path: &Path| {
        let path = path.to_owned();
        move |source| TemplateError::Io { path, source }
    };
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error(dir))? {
        let path = entry.map_err(io_error(dir))?.path();
        let Some(name) = path.file_name().and_then(|name| name.to_str()) else {
            return Err(layout(&path, "name is not UTF-8"));
        };
        if name.starts_with('.') {
            continue;
        }
        let is_dir = fs::metadata(&path).map_err(io_error(&path))?.is_dir();
        entries.push((name.to_owned(), path, is_dir));
    }
    entries.sort();
    Ok(entries)
}

/// Splits `<channel>.<locale>.<part>.j2` and checks each piece.
fn parse_file_name(file_name: &str) -> Result<(Channel, &str, Part), String> {
    let expected = "expected <channel>.<locale>.<part>.j2";
    let stem = file_name
        .strip_suffix(".j2")
        .ok_or_else(|| expected.to_owned())?;
    let pieces: Vec<&str> = stem.split('.').collect();
    let [channel, locale, part] = pieces[..] else {
        return Err(expected.to_owned());
    };
    let channel = Channel::from_str(channel).map_err(|error| error.to_string())?;
    if canonical_locale(locale).as_deref() != Some(locale) {
        return Err(format!(
            "{locale:?} is not a locale tag like `en` or `ko-KR`"
        ));
    }
    if !is_supported_locale(locale) {
        return Err(format!("no number formats for locale {locale:?}"));
    }
    let part = channel
        .parts()
        .iter()
        .map(|(part, _)| *part)
        .find(|known| known.as_str() == part)
        .ok_or_else(|| format!("{channel} templates have no part {part:?}"))?;
    Ok((channel, locale, part))
}

fn layout(path: &Path, reason: &str) -> TemplateError {
    TemplateError::Layout {
        path: path.to_owned(),
        reason: reason.to_owned(),
    }
}

/// Name prefix shared by the parts of one set: `<id>/<channel>.<locale>`.
fn set_key(template_id: &str, channel: Channel, locale: &str) -> String {
    format!("{template_id}/{channel}.{locale}")
}

/// Template ids become folder names, so only a safe alphabet is allowed.
fn is_valid_template_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_TEMPLATE_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// `ll` or `ll-RR` (also `lll`, a numeric region, `_` or any case) as `ll-RR`; `None` otherwise.
fn canonical_locale(tag: &str) -> Option<String> {
    let (language, region) = match tag.split_once(['-', '_']) {
        Some((language, region)) => (language, Some(region)),
        None => (tag, None),
    };
    if !(2..=3).contains(&language.len()) || !language.bytes().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    let mut canonical = language.to_ascii_lowercase();
    if let Some(region) = region {
        let letters = region.len() == 2 && region.bytes().all(|b| b.is_ascii_alphabetic());
        let digits = region.len() == 3 && region.bytes().all(|b| b.is_ascii_digit());
        if !letters && !digits {
            return None;
        }
        canonical.push('-');
        canonical.push_str(&region.to_ascii_uppercase());
    }
    Some(canonical)
}

/// The language of a canonical tag: `ko` for `ko-KR`.
fn language(tag: &str) -> &str {
    tag.split('-').next().unwrap_or(tag)
}

fn push_unique(chain: &mut Vec<String>, tag: &str) {
    if !chain.iter().any(|known| known == tag) {
        chain.push(tag.to_owned());
    }
}

fn json_kind(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// The data fields plus the locale the filters format for (which wins over a field of that name).
fn template_context(fields: &Map<String, Json>, locale: &str) -> Value {
    let mut context: BTreeMap<String, Value> = fields
        .iter()
        .map(|(key, value)| (key.clone(), json_to_value(value)))
        .collect();
    context.insert(LOCALE_VAR.to_owned(), Value::from(locale));
    Value::from(context)
}

fn json_to_value(value: &Json) -> Value {
    match value {
        Json::Null => Value::from(()),
        Json::Bool(flag) => Value::from(*flag),
        Json::Number(number) => {
            if let Some(int) = number.as_i64() {
                Value::from(int)
            } else if let Some(int) = number.as_u64() {
                Value::from(int)
            } else if let Some(float) = number.as_f64() {
                Value::from(float)
            } else {
                Value::from(number.to_string())
            }
        }
        Json::String(text) => Value::from(text.as_str()),
        Json::Array(items) => Value::from(items.iter().map(json_to_value).collect::<Vec<_>>()),
        Json::Object(map) => Value::from(
            map.iter()
                .map(|(key, value)| (key.clone(), json_to_value(value)))
                .collect::<BTreeMap<String, Value>>(),
        ),
    }
}

/// Trims a subject or title and refuses line breaks (a header injection in an email subject).
fn single_line(set: &str, part: Part, text: String) -> Result<String, TemplateError> {
    let trimmed = text.trim();
    if trimmed.contains(['\r', '\n']) {
        return Err(TemplateError::LineBreak {
            template: format!("{set}.{}", part.as_str()),
        });
    }
    Ok(trimmed.to_owned())
}

fn check_limits(set: &str, content: &Rendered) -> Result<(), TemplateError> {
    let (actual, limit, unit) = match content {
        Rendered::Sms { body } => (body.chars().count(), SMS_BODY_MAX_CHARS, "characters"),
        Rendered::Push { body, .. } => (body.len(), PUSH_BODY_MAX_BYTES, "bytes"),
        Rendered::Email { .. } => return Ok(()),
    };
    if actual > limit {
        return Err(TemplateError::TooLong {
            template: format!("{set}.body"),
            actual,
            limit,
            unit,
        });
    }
    Ok(())
}

/// The engine's message without its own template-name suffix, with the line when known.
fn engine_detail(error: &minijinja::Error) -> String {
    let detail = error
        .detail()
        .map_or_else(|| error.kind().to_string(), |detail| detail.to_owned());
    match error.line() {
        Some(line) => format!("line {line}: {detail}"),
        None => detail,
    }
}

/// The first variable the template uses (in source order) that the data lacks or holds as
/// null, with `undefined` or `null`. Found by static analysis, so it is a best guess.
fn find_unusable_variable(
    template: &minijinja::Template<'_, '_>,
    fields: &Map<String, Json>,
    env: &Environment<'_>,
) -> Option<(String, &'static str)> {
    let source = template.source();
    let mut paths: Vec<String> = template.undeclared_variables(true).into_iter().collect();
    paths.sort_by_key(|path| {
        (
            source.find(path.as_str()).unwrap_or(usize::MAX),
            path.clone(),
        )
    });
    paths.iter().find_map(|path| {
        let mut segments = path.split('.');
        let first = segments.next()?;
        if first == LOCALE_VAR || env.globals().any(|(name, _)| name == first) {
            return None;
        }
        let mut seen = first.to_owned();
        let mut current = fields.get(first);
        loop {
            match current {
                None => return Some((seen, "undefined")),
                Some(Json::Null) => return Some((seen, "null")),
                Some(value) => {
                    let segment = segments.next()?;
                    seen = format!("{seen}.{segment}");
                    current = value.get(segment);
                }
            }
        }
    })
}

mod format;

use format::{currency_filter, is_supported_locale, number_filter};

#[cfg(test)]
mod tests;
