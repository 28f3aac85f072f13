//! Locale-aware `number` and `currency` filters for notification templates: a small explicit
//! table of locales and currencies in place of ICU data.

use minijinja::value::{Value, ValueKind};
use minijinja::{ErrorKind, State};

use super::{LOCALE_VAR, MAX_DECIMALS, language};

/// Digit grouping and decimal mark of one locale.
#[derive(Debug)]
struct NumberStyle {
    locale: &'static str,
    group: &'static str,
    decimal: &'static str,
}

impl NumberStyle {
    const fn new(locale: &'static str, group: &'static str, decimal: &'static str) -> Self {
        NumberStyle {
            locale,
            group,
            decimal,
        }
    }
}

/// The locales the filters can format, in place of ICU data. A bare language (`ko`) uses the
/// row of its language. Separators follow CLDR; fr-FR groups with U+202F NARROW NO-BREAK SPACE.
const NUMBER_STYLES: [NumberStyle; 5] = [
    NumberStyle::new("en-US", ",", "."),
    NumberStyle::new("ko-KR", ",", "."),
    NumberStyle::new("ja-JP", ",", "."),
    NumberStyle::new("de-DE", ".", ","),
    NumberStyle::new("fr-FR", "\u{202F}", ","),
];

/// Supported currencies and how many decimals their amounts show.
const CURRENCIES: [(&str, usize); 4] = [("KRW", 0), ("JPY", 0), ("USD", 2), ("EUR", 2)];

/// Where a currency symbol goes, including any space (U+00A0, so it never wraps alone).
#[derive(Debug, Clone, Copy)]
enum Affix {
    Prefix(&'static str),
    Suffix(&'static str),
}

/// How each locale writes each currency: CLDR symbols and positions, except that ko-KR writes
/// KRW as `50,000원` and ja-JP writes JPY as `5,000円`, the forms used on receipts there.
const CURRENCY_AFFIXES: [(&str, &str, Affix); 20] = [
    ("en-US", "KRW", Affix::Prefix("₩")),
    ("en-US", "JPY", Affix::Prefix("¥")),
    ("en-US", "USD", Affix::Prefix("$")),
    ("en-US", "EUR", Affix::Prefix("€")),
    ("ko-KR", "KRW", Affix::Suffix("원")),
    ("ko-KR", "JPY", Affix::Prefix("JP¥")),
    ("ko-KR", "USD", Affix::Prefix("US$")),
    ("ko-KR", "EUR", Affix::Prefix("€")),
    ("ja-JP", "KRW", Affix::Prefix("₩")),
    ("ja-JP", "JPY", Affix::Suffix("円")),
    ("ja-JP", "USD", Affix::Prefix("$")),
    ("ja-JP", "EUR", Affix::Prefix("€")),
    ("de-DE", "KRW", Affix::Suffix("\u{A0}₩")),
    ("de-DE", "JPY", Affix::Suffix("\u{A0}¥")),
    ("de-DE", "USD", Affix::Suffix("\u{A0}$")),
    ("de-DE", "EUR", Affix::Suffix("\u{A0}€")),
    ("fr-FR", "KRW", Affix::Suffix("\u{A0}KRW")),
    ("fr-FR", "JPY", Affix::Suffix("\u{A0}JPY")),
    ("fr-FR", "USD", Affix::Suffix("\u{A0}$US")),
    ("fr-FR", "EUR", Affix::Suffix("\u{A0}€")),
];

/// Whether the filters can format numbers for a canonical tag.
pub(super) fn is_supported_locale(locale: &str) -> bool {
    number_style(locale).is_some()
}

/// The formatting row for a canonical tag: the exact one, or for a bare language its language's.
fn number_style(locale: &str) -> Option<&'static NumberStyle> {
    NUMBER_STYLES
        .iter()
        .find(|style| style.locale == locale)
        .or_else(|| {
            (!locale.contains('-'))
                .then(|| {
                    NUMBER_STYLES
                        .iter()
                        .find(|style| language(style.locale) == locale)
                })
                .flatten()
        })
}

/// The formatting row for the template being rendered.
fn current_style(state: &State<'_, '_>) -> Result<&'static NumberStyle, minijinja::Error> {
    let locale = state.lookup(LOCALE_VAR).unwrap_or_default();
    number_style(locale.as_str().unwrap_or_default()).ok_or_else(|| {
        minijinja::Error::new(
            ErrorKind::InvalidOperation,
            "no number format for this locale",
        )
    })
}

/// `{{ x|number }}` and `{{ x|number(2) }}`.
pub(super) fn number_filter(
    state: &State<'_, '_>,
    value: Value,
    decimals: Option<u32>,
) -> Result<String, minijinja::Error> {
    let style = current_style(state)?;
    let mut number = Decimal::from_value(&value)?;
    if let Some(decimals) = decimals {
        if decimals > MAX_DECIMALS {
            let detail = format!("number() takes at most {MAX_DECIMALS} decimals");
            return Err(minijinja::Error::new(ErrorKind::InvalidOperation, detail));
        }
        number = number.round(decimals as usize);
    }
    Ok(number.format(style))
}

/// `{{ x|currency("KRW") }}`.
pub(super) fn currency_filter(
    state: &State<'_, '_>,
    value: Value,
    code: &str,
) -> Result<String, minijinja::Error> {
    let style = current_style(state)?;
    let unsupported = || {
        let detail = format!("unsupported currency {code:?} (supported: KRW, JPY, USD, EUR)");
        minijinja::Error::new(ErrorKind::InvalidOperation, detail)
    };
    let decimals = CURRENCIES
        .iter()
        .find(|(known, _)| *known == code)
        .map(|(_, decimals)| *decimals)
        .ok_or_else(unsupported)?;
    let affix = CURRENCY_AFFIXES
        .iter()
        .find(|(locale, currency, _)| *locale == style.locale && *currency == code)
        .map(|(_, _, affix)| *affix)
        .ok_or_else(unsupported)?;
    let number = Decimal::from_value(&value)?.round(decimals);
    let sign = if number.negative { "-" } else { "" };
    let magnitude = Decimal {
        negative: false,
        ..number
    }
    .format(style);
    Ok(match affix {
        Affix::Prefix(symbol) => format!("{sign}{symbol}{magnitude}"),
        Affix::Suffix(symbol) => format!("{sign}{magnitude}{symbol}"),
    })
}

/// A number as decimal digits, so formatting and rounding never meet binary float error.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Decimal {
    negative: bool,
    /// Integer digits without leading zeros (`0` for zero).
    integer: String,
    fraction: String,
}

impl Decimal {
    /// Parses `-?[0-9]+(\.[0-9]+)?`.
    fn parse(text: &str) -> Option<Decimal> {
        let (negative, unsigned) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (integer, fraction) = match unsigned.split_once('.') {
            Some((integer, fraction)) if !fraction.is_empty() => (integer, fraction),
            Some(_) => return None,
            None => (unsigned, ""),
        };
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if integer.is_empty() || !all_digits(integer) || !all_digits(fraction) {
            return None;
        }
        let integer = integer.trim_start_matches('0');
        let integer = if integer.is_empty() { "0" } else { integer };
        Some(
            Decimal {
                negative,
                integer: integer.to_owned(),
                fraction: fraction.to_owned(),
            }
            .without_negative_zero(),
        )
    }

    /// Reads a number or a decimal string; undefined and null are undefined-value errors so
    /// that the caller can name the variable.
    fn from_value(value: &Value) -> Result<Decimal, minijinja::Error> {
        let invalid = |detail: String| minijinja::Error::new(ErrorKind::InvalidOperation, detail);
        if value.is_undefined() || value.is_none() {
            return Err(minijinja::Error::new(
                ErrorKind::UndefinedError,
                "cannot format a missing or null value",
            ));
        }
        let text = match value.kind() {
            ValueKind::Number if value.is_integer() => value.to_string(),
            ValueKind::Number => {
                let float = f64::try_from(value.clone())?;
                if !float.is_finite() {
                    return Err(invalid(format!("cannot format {float}")));
                }
                // Display gives the shortest digits that read back as the same float, never
                // an exponent: 1234.5 stays "1234.5".
                float.to_string()
            }
            ValueKind::String => value.as_str().unwrap_or_default().trim().to_owned(),
            other => return Err(invalid(format!("expected a number, got {other}"))),
        };
        Decimal::parse(&text).ok_or_else(|| invalid(format!("{text:?} is not a number")))
    }

    /// Rounds half away from zero to `scale` decimals, padding with zeros.
    fn round(mut self, scale: usize) -> Decimal {
        if self.fraction.len() <= scale {
            let padding = scale - self.fraction.len();
            self.fraction.extend(std::iter::repeat_n('0', padding));
            return self;
        }
        let round_up = self.fraction.as_bytes()[scale] >= b'5';
        self.fraction.truncate(scale);
        if round_up {
            let mut digits: Vec<u8> = format!("{}{}", self.integer, self.fraction).into_bytes();
            let mut carry = true;
            for digit in digits.iter_mut().rev() {
                if *digit == b'9' {
                    *digit = b'0';
                } else {
                    *digit += 1;
                    carry = false;
                    break;
                }
            }
            if carry {
                digits.insert(0, b'1');
            }
            let split = digits.len() - scale;
            self.fraction = String::from_utf8_lossy(&digits[split..]).into_owned();
            self.integer = String::from_utf8_lossy(&digits[..split]).into_owned();
        }
        self.without_negative_zero()
    }

    fn without_negative_zero(mut self) -> Decimal {
        let zero = |s: &str| s.bytes().all(|b| b == b'0');
        if zero(&self.integer) && zero(&self.fraction) {
            self.negative = false;
        }
        self
    }

    fn format(&self, style: &NumberStyle) -> String {
        let mut out = String::with_capacity(self.integer.len() * 2 + self.fraction.len() + 2);
        if self.negative {
            out.push('-');
        }
        let count = self.integer.len();
        for (index, digit) in self.integer.chars().enumerate() {
            if index > 0 && (count - index).is_multiple_of(3) {
                out.push_str(style.group);
            }
            out.push(digit);
        }
        if !self.fraction.is_empty() {
            out.push_str(style.decimal);
            out.push_str(&self.fraction);
        }
        out
    }
}
