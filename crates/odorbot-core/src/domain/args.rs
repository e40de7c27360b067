//! The argument language of `/odor`: tokens, and the typed values they parse into.
//!
//! Everything here is pure and bounded: input length, regex size and numeric ranges are
//! all capped before anything else sees the value.

use std::fmt;
use std::time::Duration;

use regex::{Regex, RegexBuilder};
use thiserror::Error;

use super::ids::{IdError, K8sName};

/// Slack caps slash-command text at a few thousand characters; we accept less, since no
/// command needs more and every echo of input must stay short.
pub const MAX_INPUT_CHARS: usize = 1000;
/// Longest regex source accepted for log filters.
pub const MAX_REGEX_CHARS: usize = 200;
/// Compiled-program budget for a filter regex: enough for real filters such as
/// `duration.*[5-9][0-9]{3}`, far too small for `(a{100}){100}`-style blow-ups.
const REGEX_SIZE_LIMIT: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TokenizeError {
    #[error("the command is {len} characters long; at most {max} are accepted")]
    TooLong { len: usize, max: usize },
    #[error("the command contains a control character (U+{0:04X}); type it as plain text")]
    ControlCharacter(u32),
    #[error("a quote opened at character {0} is never closed")]
    UnterminatedQuote(usize),
}

/// Splits command text into words, honouring straight and typographic quotes (Slack
/// clients turn `"` into `“ ”` when smart punctuation is on).
///
/// # Errors
/// Input that is too long, holds control characters, or leaves a quote open.
pub fn tokenize(input: &str) -> Result<Vec<String>, TokenizeError> {
    let len = input.chars().count();
    if len > MAX_INPUT_CHARS {
        return Err(TokenizeError::TooLong {
            len,
            max: MAX_INPUT_CHARS,
        });
    }
    if let Some(c) = input
        .chars()
        .find(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r'))
    {
        return Err(TokenizeError::ControlCharacter(c as u32));
    }
    // Quotes open only at the start of a word and close only before whitespace or the
    // end, so apostrophes inside words ("it's down") stay literal.
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut in_token = false;
    let mut quote: Option<(char, usize)> = None;
    for (pos, &c) in chars.iter().enumerate() {
        let at_boundary = chars.get(pos + 1).is_none_or(|n| n.is_whitespace());
        match quote {
            Some((close, _)) if c == close && at_boundary => quote = None,
            Some(_) => current.push(c),
            None if c.is_whitespace() => {
                if in_token {
                    tokens.push(std::mem::take(&mut current));
                    in_token = false;
                }
            }
            None => {
                match closing_quote(c).filter(|_| !in_token) {
                    Some(close) => quote = Some((close, pos + 1)),
                    None => current.push(c),
                }
                in_token = true;
            }
        }
    }
    if let Some((_, opened_at)) = quote {
        return Err(TokenizeError::UnterminatedQuote(opened_at));
    }
    if in_token {
        tokens.push(current);
    }
    Ok(tokens)
}

fn closing_quote(open: char) -> Option<char> {
    match open {
        '"' => Some('"'),
        '\'' => Some('\''),
        '“' => Some('”'),
        '‘' => Some('’'),
        _ => None,
    }
}

/// The most replicas any action may set: a deployment's count, an autoscaler's bounds. The
/// one bound: the `/odor` verbs, the catalog's `Replicas` type and the cluster layer all
/// read it, and a catalog placeholder may only narrow it.
pub const MAX_REPLICAS: u32 = 50;

/// The highest rollout or Helm revision a rollback may name.
pub const MAX_REVISION: u32 = 1_000_000;

/// Parses `INC-7`, `inc-7` or `7` into an incident number.
pub fn parse_incident_number(s: &str) -> Option<i64> {
    let digits = s
        .strip_prefix("INC-")
        .or_else(|| s.strip_prefix("inc-"))
        .unwrap_or(s);
    digits.parse().ok().filter(|n| *n > 0)
}

/// The kinds of value an argument or option can take; each has its own parser and its own
/// way of describing what it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    /// A Kubernetes object name (RFC 1123).
    Name,
    /// A whole number within inclusive bounds.
    Int { min: i64, max: i64 },
    /// A duration such as `90s`, `10m`, `2h`, `1h30m`, within inclusive bounds in seconds.
    Duration { min_secs: u64, max_secs: u64 },
    /// A regular expression used as a filter; size-limited.
    Regex,
    /// One of a fixed set of words.
    Choice(&'static [&'static str]),
    /// Free text: the rest of the command, joined by spaces (a reason, an update).
    Text { max_chars: usize },
    /// An incident, as `INC-7` or `7`.
    Incident,
}

impl ArgKind {
    /// What this kind accepts, for help and error replies.
    pub fn describe(&self) -> String {
        match self {
            Self::Name => "a Kubernetes name (lowercase letters, digits, '-', '.')".into(),
            Self::Int { min, max } => format!("a whole number from {min} to {max}"),
            Self::Duration { min_secs, max_secs } => format!(
                "a duration such as 90s, 10m or 2h, from {} to {}",
                format_duration(Duration::from_secs(*min_secs)),
                format_duration(Duration::from_secs(*max_secs))
            ),
            Self::Regex => format!("a regular expression of at most {MAX_REGEX_CHARS} characters"),
            Self::Choice(words) => format!("one of {}", words.join(", ")),
            Self::Text { max_chars } => format!("text of at most {max_chars} characters"),
            Self::Incident => "an incident such as INC-7".into(),
        }
    }

    /// Parses one raw token (or, for `Text`, the joined rest) into a typed value.
    ///
    /// # Errors
    /// A [`ValueError`] saying what is wrong with the value.
    pub fn parse(&self, raw: &str) -> Result<Value, ValueError> {
        match *self {
            Self::Name => raw
                .parse::<K8sName>()
                .map(Value::Name)
                .map_err(ValueError::Name),
            Self::Int { min, max } => parse_int(raw, min, max).map(Value::Int),
            Self::Duration { min_secs, max_secs } => {
                let d = parse_duration(raw)?;
                if d.as_secs() < min_secs || d.as_secs() > max_secs {
                    return Err(ValueError::OutOfRange(self.describe()));
                }
                Ok(Value::Duration(d))
            }
            Self::Regex => Filter::new(raw).map(Value::Regex),
            Self::Choice(words) => words
                .iter()
                .find(|w| w.eq_ignore_ascii_case(raw))
                .map(|w| Value::Word(w))
                .ok_or_else(|| ValueError::NotAChoice(self.describe())),
            Self::Incident => parse_incident_number(raw)
                .map(Value::Int)
                .ok_or_else(|| ValueError::NotAChoice(self.describe())),
            Self::Text { max_chars } => {
                let len = raw.chars().count();
                if raw.trim().is_empty() {
                    Err(ValueError::EmptyText)
                } else if len > max_chars {
                    Err(ValueError::TextTooLong {
                        len,
                        max: max_chars,
                    })
                } else {
                    Ok(Value::Text(raw.to_owned()))
                }
            }
        }
    }
}

/// A parsed argument value.
#[derive(Debug, Clone)]
pub enum Value {
    Name(K8sName),
    Int(i64),
    Duration(Duration),
    Regex(Filter),
    Word(&'static str),
    Text(String),
    Flag,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ValueError {
    #[error("{0}")]
    Name(IdError),
    #[error("is not a whole number")]
    NotANumber,
    #[error("is out of range: expected {0}")]
    OutOfRange(String),
    #[error("is not a duration: use a number followed by s, m, h or d (e.g. 90s, 10m, 2h)")]
    BadDuration,
    #[error("is not a usable regular expression: {0}")]
    BadRegex(String),
    #[error("is not accepted: expected {0}")]
    NotAChoice(String),
    #[error("is empty")]
    EmptyText,
    #[error("is {len} characters long; at most {max} are allowed")]
    TextTooLong { len: usize, max: usize },
}

fn parse_int(raw: &str, min: i64, max: i64) -> Result<i64, ValueError> {
    // Digits only (an optional leading '-'): no '+', no underscores, no hex surprises.
    let digits = raw.strip_prefix('-').unwrap_or(raw);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ValueError::NotANumber);
    }
    let range = || ValueError::OutOfRange(ArgKind::Int { min, max }.describe());
    let n: i64 = raw.parse().map_err(|_| range())?;
    if n < min || n > max {
        return Err(range());
    }
    Ok(n)
}

/// Parses `90s`, `10m`, `2h`, `1d` and sums of them (`1h30m`).
///
/// # Errors
/// [`ValueError::BadDuration`] for anything else, including a bare number (the unit is
/// never guessed) and values beyond 365 days.
pub fn parse_duration(raw: &str) -> Result<Duration, ValueError> {
    const MAX_SECS: u64 = 365 * 24 * 3600;
    let mut total: u64 = 0;
    let mut number: Option<u64> = None;
    for c in raw.chars() {
        if let Some(d) = c.to_digit(10) {
            let n = number
                .unwrap_or(0)
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(d)))
                .filter(|n| *n <= MAX_SECS)
                .ok_or(ValueError::BadDuration)?;
            number = Some(n);
            continue;
        }
        let unit = match c.to_ascii_lowercase() {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(ValueError::BadDuration),
        };
        let n = number.take().ok_or(ValueError::BadDuration)?;
        total = total
            .checked_add(n.saturating_mul(unit))
            .filter(|t| *t <= MAX_SECS)
            .ok_or(ValueError::BadDuration)?;
    }
    if number.is_some() || total == 0 {
        return Err(ValueError::BadDuration);
    }
    Ok(Duration::from_secs(total))
}

/// Renders a duration the way users type it: `1h30m`, `90s` becomes `1m30s`.
pub fn format_duration(d: Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

/// A compiled, size-limited regular expression used to filter text such as log lines.
/// Rust's regex engine runs in linear time, so the only risk left is compile size,
/// which the builder caps.
#[derive(Clone)]
pub struct Filter {
    source: String,
    regex: Regex,
}

impl Filter {
    /// # Errors
    /// [`ValueError::BadRegex`] when the pattern is too long, invalid, or too large once
    /// compiled.
    pub fn new(source: &str) -> Result<Self, ValueError> {
        let len = source.chars().count();
        if len == 0 {
            return Err(ValueError::BadRegex("the pattern is empty".into()));
        }
        if len > MAX_REGEX_CHARS {
            return Err(ValueError::BadRegex(format!(
                "the pattern is {len} characters long; at most {MAX_REGEX_CHARS} are allowed"
            )));
        }
        let regex = RegexBuilder::new(source)
            .size_limit(REGEX_SIZE_LIMIT)
            .dfa_size_limit(REGEX_SIZE_LIMIT)
            .nest_limit(16)
            .build()
            .map_err(|e| ValueError::BadRegex(first_line(&e.to_string())))?;
        Ok(Self {
            source: source.to_owned(),
            regex,
        })
    }

    pub fn is_match(&self, text: &str) -> bool {
        self.regex.is_match(text)
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }
}

/// Two filters are the same when their sources are: compilation is deterministic.
impl PartialEq for Filter {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for Filter {}

impl fmt::Debug for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Filter").field(&self.source).finish()
    }
}

/// The regex crate's errors are multi-line diagrams; users get the gist.
fn first_line(message: &str) -> String {
    message
        .lines()
        .rev()
        .find(|l| l.starts_with("error:"))
        .or_else(|| message.lines().next())
        .unwrap_or("invalid pattern")
        .trim_start_matches("error: ")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<String> {
        tokenize(s).unwrap()
    }

    #[test]
    fn tokenizer_splits_on_whitespace_and_keeps_quoted_text_whole() {
        assert_eq!(toks("  help   status "), ["help", "status"]);
        assert_eq!(
            toks(r#"rollback api --reason "bad deploy, 5xx up""#),
            ["rollback", "api", "--reason", "bad deploy, 5xx up"]
        );
        assert_eq!(
            toks("--reason “smart quotes”"),
            ["--reason", "smart quotes"]
        );
        assert_eq!(toks("x ‘single smart’"), ["x", "single smart"]);
        assert_eq!(toks("it's down"), ["it's", "down"]);
        assert_eq!(toks("'it's down' now"), ["it's down", "now"]);
        assert_eq!(
            tokenize(r#"say "a"b"#),
            Err(TokenizeError::UnterminatedQuote(5))
        );
        assert_eq!(toks(r#""""#), [""]);
        assert_eq!(toks("a\nb\tc"), ["a", "b", "c"]);
        assert!(toks("").is_empty());
    }

    #[test]
    fn tokenizer_rejects_hostile_input() {
        assert_eq!(
            tokenize("say \"unclosed"),
            Err(TokenizeError::UnterminatedQuote(5))
        );
        assert_eq!(tokenize("a\u{7}b"), Err(TokenizeError::ControlCharacter(7)));
        assert_eq!(
            tokenize("a\u{1b}[31mred"),
            Err(TokenizeError::ControlCharacter(0x1b))
        );
        let long = "x".repeat(MAX_INPUT_CHARS + 1);
        assert!(matches!(
            tokenize(&long),
            Err(TokenizeError::TooLong { len: 1001, .. })
        ));
        // Multi-byte text counts in characters, not bytes.
        assert!(tokenize(&"é".repeat(MAX_INPUT_CHARS)).is_ok());
    }

    #[test]
    fn durations_parse_units_and_sums() {
        let cases = [
            ("90s", 90),
            ("10m", 600),
            ("2h", 7200),
            ("1d", 86_400),
            ("1h30m", 5400),
            ("2H", 7200),
        ];
        for (raw, secs) in cases {
            assert_eq!(parse_duration(raw), Ok(Duration::from_secs(secs)), "{raw}");
        }
        for bad in [
            "",
            "10",
            "m",
            "10x",
            "1.5h",
            "-5m",
            "0s",
            "99999999999999999999s",
            "400d",
            "١٠m",
        ] {
            assert_eq!(parse_duration(bad), Err(ValueError::BadDuration), "{bad}");
        }
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
    }

    #[test]
    fn durations_respect_their_bounds() {
        let kind = ArgKind::Duration {
            min_secs: 60,
            max_secs: 86_400,
        };
        assert!(kind.parse("10m").is_ok());
        let err = kind.parse("30s").unwrap_err();
        assert_eq!(
            err.to_string(),
            "is out of range: expected a duration such as 90s, 10m or 2h, from 1m to 1d"
        );
        assert!(kind.parse("2d").is_err());
    }

    #[test]
    fn integers_are_digits_within_bounds() {
        let kind = ArgKind::Int { min: 0, max: 20 };
        assert!(matches!(kind.parse("5"), Ok(Value::Int(5))));
        assert!(matches!(kind.parse("0"), Ok(Value::Int(0))));
        for bad in ["+5", "5.0", "0x10", "five", "", "1_0", "٥"] {
            assert_eq!(
                kind.parse(bad).unwrap_err(),
                ValueError::NotANumber,
                "{bad}"
            );
        }
        for out in ["21", "-1", "99999999999999999999999"] {
            assert!(
                matches!(kind.parse(out), Err(ValueError::OutOfRange(_))),
                "{out}"
            );
        }
    }

    #[test]
    fn regex_filters_compile_with_limits() {
        let f = Filter::new("401|403").unwrap();
        assert!(f.is_match("HTTP 403 Forbidden"));
        assert!(!f.is_match("HTTP 200"));
        assert!(Filter::new("duration.*[5-9][0-9][0-9][0-9]").is_ok());
        for bad in ["(", "", "[z-a]"] {
            assert!(
                matches!(Filter::new(bad), Err(ValueError::BadRegex(_))),
                "{bad}"
            );
        }
        // Pathological patterns: blow-ups by repetition and by nesting are refused
        // quickly instead of eating memory.
        assert!(Filter::new("(a{100}){100}").is_err());
        assert!(Filter::new(&format!("{}a{}", "(".repeat(40), ")".repeat(40))).is_err());
        assert!(Filter::new(&"a".repeat(MAX_REGEX_CHARS + 1)).is_err());
        // Backtracking classics are harmless to a linear-time engine.
        let evil = Filter::new("(a+)+$").unwrap();
        assert!(!evil.is_match(&format!("{}b", "a".repeat(10_000))));
    }

    #[test]
    fn choices_and_text_are_checked() {
        let kind = ArgKind::Choice(&["connections", "slow-queries", "pools"]);
        assert!(matches!(kind.parse("POOLS"), Ok(Value::Word("pools"))));
        assert_eq!(
            kind.parse("tables").unwrap_err().to_string(),
            "is not accepted: expected one of connections, slow-queries, pools"
        );
        let text = ArgKind::Text { max_chars: 10 };
        assert_eq!(text.parse("   ").unwrap_err(), ValueError::EmptyText);
        assert!(matches!(
            text.parse("this is far too long"),
            Err(ValueError::TextTooLong { len: 20, max: 10 })
        ));
    }
}
