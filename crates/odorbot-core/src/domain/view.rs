//! The message model: what odorbot says, independent of Block Kit.
//!
//! Text fields hold Slack mrkdwn written by odorbot. Anything a user typed must pass
//! through [`escape`] or [`code_span`] before it is placed in one, so that input such as
//! `<!channel>` can never notify anybody.

/// Slack's limit for a section's text.
pub const SECTION_MAX_CHARS: usize = 3000;
/// Slack's limit for blocks in one message.
pub const MAX_BLOCKS: usize = 50;
/// Longest echo of user input inside a reply.
const ECHO_MAX_CHARS: usize = 60;

/// Escapes the three characters Slack's mrkdwn treats as control characters, and drops
/// bidirectional controls and zero-width characters, so an echo can neither notify anyone
/// nor visually reorder the text around it.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c if is_format_char(c) => {}
            c => out.push(c),
        }
    }
    out
}

/// Text for a plain-text field (a header, a button): Slack shows it as given, so nothing is
/// escaped, but bidirectional controls and zero-width characters are dropped as in
/// [`escape`], so an alert's summary cannot reorder the header it becomes.
pub fn plain(text: &str) -> String {
    text.chars().filter(|c| !is_format_char(*c)).collect()
}

/// Shows odorbot's own text (a synopsis, a verb) as inline code, escaped but whole.
pub fn code(text: &str) -> String {
    format!("`{}`", escape(text))
}

/// Shows user input as inline code: escaped, shortened, and with
/// backticks replaced so the span cannot be broken out of. Bidirectional overrides and
/// other format characters are dropped, so the echo reads as it was typed.
pub fn code_span(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .filter(|c| !is_format_char(*c))
        .map(|c| if c == '`' { '\'' } else { c })
        .collect();
    let shown = truncate(&cleaned, ECHO_MAX_CHARS);
    if shown.trim().is_empty() {
        return "(empty)".into();
    }
    format!("`{}`", escape(&shown))
}

/// Every bidirectional control (the Arabic letter mark too) and the invisible characters
/// that could hide text: zero-width ones, joiners, the soft hyphen, the BOM.
fn is_format_char(c: char) -> bool {
    matches!(
        c,
        '\u{00ad}'
            | '\u{061c}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{feff}'
    )
}

/// Cuts `text` to at most `max` characters, marking the cut with `…`.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// One message, as odorbot means it. Serializable so must-send messages can wait in the
/// store's outbox.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Message {
    /// The notification fallback Slack shows in alerts and previews; always set.
    pub text: String,
    pub blocks: Vec<Block>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Block {
    Header(String),
    /// mrkdwn text; long text is split over several sections when rendered.
    Section(String),
    /// Two-column key/value pairs (mrkdwn).
    Fields(Vec<(String, String)>),
    /// Small grey print.
    Context(String),
    Divider,
    /// A row of buttons (at most 25; Slack's limit).
    Actions(Vec<Button>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ButtonStyle {
    Default,
    Primary,
    Danger,
}

/// A button; clicks come back as `block_actions` with this `action_id`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Button {
    pub text: String,
    pub action_id: String,
    pub value: Option<String>,
    pub style: ButtonStyle,
}

impl Button {
    pub fn new(text: impl Into<String>, action_id: impl Into<String>, style: ButtonStyle) -> Self {
        Self {
            text: text.into(),
            action_id: action_id.into(),
            value: None,
            style,
        }
    }
}

impl Message {
    /// A message made of one mrkdwn section, the usual shape of a command reply.
    pub fn text(text: impl Into<String>) -> Self {
        let text = text.into();
        Self {
            text: fallback_of(&text),
            blocks: vec![Block::Section(text)],
        }
    }
}

/// Plain, short notification text from mrkdwn: the first line, without markup. An
/// underscore is markup only at the edge of a word (`_italic_`); inside one it is text
/// (`:no_entry:`, `odordiff_api`) and stays.
fn fallback_of(mrkdwn: &str) -> String {
    let first: Vec<char> = mrkdwn.lines().next().unwrap_or_default().chars().collect();
    let word = |i: Option<usize>| {
        i.and_then(|i| first.get(i))
            .is_some_and(|c| c.is_alphanumeric())
    };
    let plain: String = first
        .iter()
        .enumerate()
        .filter(|&(i, c)| match c {
            '*' | '`' => false,
            '_' => word(i.checked_sub(1)) && word(Some(i + 1)),
            _ => true,
        })
        .map(|(_, c)| *c)
        .collect();
    truncate_escaped(&plain, 150)
}

/// Cuts escaped text like [`truncate`], but never inside an entity: `&l…` would show as
/// written in the notification.
fn truncate_escaped(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    // An entity is at most five bytes (`&amp;`): a `&` that late with no `;` is cut.
    if let Some(amp) = out.rfind('&')
        && !out[amp..].contains(';')
    {
        out.truncate(amp);
    }
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_drops_bidi_controls_and_zero_width_characters() {
        assert_eq!(
            escape("rollback \u{202e}kcab\u{202c} ok\u{200b}\u{2066}x\u{2069}\u{feff}"),
            "rollback kcab okx"
        );
    }

    #[test]
    fn escape_drops_the_arabic_letter_mark_and_invisible_joiners() {
        assert_eq!(
            escape("a\u{061c}b\u{2060}c\u{2063}d\u{00ad}e\u{180e}f"),
            "abcdef"
        );
        assert_eq!(code_span("x\u{061c}y"), "`xy`");
    }

    #[test]
    fn plain_text_keeps_markup_and_drops_bidi_controls() {
        assert_eq!(plain("<!channel> \u{202e}gnp.exe"), "<!channel> gnp.exe");
    }

    #[test]
    fn escape_neutralises_mentions() {
        assert_eq!(
            escape("<!channel> & <@U1>"),
            "&lt;!channel&gt; &amp; &lt;@U1&gt;"
        );
    }

    #[test]
    fn code_span_cannot_be_broken_out_of() {
        assert_eq!(code_span("a`b"), "`a'b`");
        assert_eq!(code_span("\u{202e}abc"), "`abc`");
        assert_eq!(code_span(""), "(empty)");
        let long = code_span(&"y".repeat(100));
        assert_eq!(long.chars().count(), ECHO_MAX_CHARS + 2);
        assert!(long.ends_with("…`"));
    }

    #[test]
    fn a_long_fallback_is_not_cut_inside_an_entity() {
        let m = Message::text(format!("{}&lt;!channel&gt;", "x".repeat(146)));
        assert_eq!(m.text, format!("{}…", "x".repeat(146)));
        let m = Message::text(format!("{}&amp;", "x".repeat(144)));
        assert_eq!(m.text, format!("{}&amp;", "x".repeat(144)));
    }

    #[test]
    fn text_messages_have_a_plain_fallback() {
        let m = Message::text("*Status*: `ok`\nmore");
        assert_eq!(m.text, "Status: ok");
        let m = Message::text(":no_entry: _not_ for `snake_case` names");
        assert_eq!(m.text, ":no_entry: not for snake_case names");
    }
}
