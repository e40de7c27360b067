//! Block Kit rendering of the domain's message model: a pure function, within Slack's
//! limits (50 blocks, 3000 characters a section, 150 a header).

use slack_morphism::prelude::*;

use crate::domain::view::{
    Block, ButtonStyle, MAX_BLOCKS, Message, SECTION_MAX_CHARS, plain, truncate,
};

const HEADER_MAX_CHARS: usize = 150;
const FIELD_MAX_CHARS: usize = 2000;
const MAX_FIELDS: usize = 10;
const MAX_BUTTONS: usize = 25;

/// The message's fallback text and blocks, ready for `chat.postMessage` or `response_url`.
pub fn render(message: &Message) -> SlackMessageContent {
    let mut blocks: Vec<SlackBlock> = Vec::new();
    for block in &message.blocks {
        match block {
            Block::Header(text) => blocks.push(
                SlackHeaderBlock::new(
                    SlackBlockPlainText::new(truncate(&plain(text), HEADER_MAX_CHARS)).into(),
                )
                .into(),
            ),
            Block::Section(text) => {
                for chunk in split_for_sections(text) {
                    blocks.push(SlackSectionBlock::new().with_text(mrkdwn(chunk)).into());
                }
            }
            Block::Fields(pairs) => {
                for group in pairs.chunks(MAX_FIELDS) {
                    let fields = group
                        .iter()
                        .map(|(k, v)| mrkdwn(truncate(&format!("*{k}*\n{v}"), FIELD_MAX_CHARS)))
                        .collect();
                    blocks.push(SlackSectionBlock::new().with_fields(fields).into());
                }
            }
            Block::Context(text) => blocks.push(
                SlackContextBlock::new(vec![SlackContextBlockElement::MarkDown(
                    SlackBlockMarkDownText::new(truncate(text, SECTION_MAX_CHARS)),
                )])
                .into(),
            ),
            Block::Divider => blocks.push(SlackDividerBlock::new().into()),
            Block::Actions(buttons) => {
                let elements = buttons
                    .iter()
                    .take(MAX_BUTTONS)
                    .map(|b| {
                        let style = match b.style {
                            ButtonStyle::Default => None,
                            ButtonStyle::Primary => Some(SlackBlockButtonStyle::Primary),
                            ButtonStyle::Danger => Some(SlackBlockButtonStyle::Danger),
                        };
                        SlackActionBlockElement::Button(
                            SlackBlockButtonElement::new(
                                SlackBlockPlainText::new(truncate(&plain(&b.text), 75)).into(),
                            )
                            .with_action_id(SlackActionId::new(truncate(&b.action_id, 255)))
                            .opt_value(b.value.clone())
                            .opt_style(style),
                        )
                    })
                    .collect();
                blocks.push(SlackActionsBlock::new(elements).into());
            }
        }
    }
    if blocks.len() > MAX_BLOCKS {
        let cut = blocks.len() - (MAX_BLOCKS - 1);
        blocks.truncate(MAX_BLOCKS - 1);
        blocks.push(
            SlackContextBlock::new(vec![SlackContextBlockElement::MarkDown(
                SlackBlockMarkDownText::new(format!("… {cut} more blocks not shown")),
            )])
            .into(),
        );
    }
    SlackMessageContent::new()
        .with_text(message.text.clone())
        .with_blocks(blocks)
}

fn mrkdwn(text: String) -> SlackBlockText {
    SlackBlockText::MarkDown(SlackBlockMarkDownText::new(text))
}

/// Splits long mrkdwn at line breaks into pieces that fit a section; a single line
/// longer than a section is cut.
fn split_for_sections(text: &str) -> Vec<String> {
    let mut chunks = Vec::new();
    let mut current = String::new();
    let mut current_chars = 0;
    for line in text.split('\n') {
        let line = truncate(line, SECTION_MAX_CHARS);
        let line_chars = line.chars().count();
        if current_chars > 0 && current_chars + 1 + line_chars > SECTION_MAX_CHARS {
            chunks.push(std::mem::take(&mut current));
            current_chars = 0;
        }
        if current_chars > 0 {
            current.push('\n');
            current_chars += 1;
        }
        current.push_str(&line);
        current_chars += line_chars;
    }
    if !current.is_empty() || chunks.is_empty() {
        chunks.push(current);
    }
    chunks
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_message_renders_to_block_kit_json() {
        let m = Message {
            text: "fallback".into(),
            blocks: vec![
                Block::Header("Title".into()),
                Block::Section("*bold* text".into()),
                Block::Fields(vec![("Slack".into(), "ok".into())]),
                Block::Context("small".into()),
                Block::Divider,
            ],
        };
        let got = serde_json::to_value(render(&m)).unwrap();
        assert_eq!(
            got,
            json!({
                "text": "fallback",
                "blocks": [
                    {"type": "header", "text": {"type": "plain_text", "text": "Title"}},
                    {"type": "section", "text": {"type": "mrkdwn", "text": "*bold* text"}},
                    {"type": "section", "fields": [{"type": "mrkdwn", "text": "*Slack*\nok"}]},
                    {"type": "context", "elements": [{"type": "mrkdwn", "text": "small"}]},
                    {"type": "divider"}
                ]
            })
        );
    }

    #[test]
    fn long_text_is_split_and_block_count_capped() {
        let line = "x".repeat(100);
        let long = vec![line; 100].join("\n");
        let content = render(&Message::text(long));
        let blocks = content.blocks.unwrap();
        assert_eq!(blocks.len(), 4);
        for b in &blocks {
            let SlackBlock::Section(s) = b else { panic!() };
            let Some(SlackBlockText::MarkDown(t)) = &s.text else {
                panic!()
            };
            assert!(t.text.chars().count() <= SECTION_MAX_CHARS);
        }
        let many = Message {
            text: "t".into(),
            blocks: vec![Block::Divider; 80],
        };
        let blocks = render(&many).blocks.unwrap();
        assert_eq!(blocks.len(), MAX_BLOCKS);
        let json = serde_json::to_string(blocks.last().unwrap()).unwrap();
        assert!(json.contains("31 more blocks not shown"), "{json}");
    }
}
