//! Interactive checklists: items ticked by people, the state kept in the store.

use super::view::{Block, Button, ButtonStyle, Message, escape};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checklist {
    pub id: String,
    /// The runbook's checklist or maintenance list id.
    pub name: String,
    pub title: String,
    pub items: Vec<String>,
    /// Who ticked each item, if anyone.
    pub done: Vec<Option<String>>,
}

impl Checklist {
    /// Ticks item `index` for `user`, or unticks it when it was ticked. `None` for an
    /// index the list does not have.
    pub fn toggled(&self, index: usize, user: &str) -> Option<Checklist> {
        let mut next = self.clone();
        let slot = next.done.get_mut(index)?;
        *slot = match slot {
            Some(_) => None,
            None => Some(user.to_owned()),
        };
        Some(next)
    }

    pub fn button_id(&self, index: usize) -> String {
        format!("checklist:{}:{index}", self.id)
    }

    pub fn render(&self) -> Message {
        let ticked = self.done.iter().filter(|d| d.is_some()).count();
        let title = format!("{} ({ticked}/{} done)", self.title, self.items.len());
        let mut blocks = vec![Block::Header(title.clone())];
        for (i, item) in self.items.iter().enumerate() {
            let (line, label, style) = match &self.done[i] {
                Some(who) => (
                    format!("☑ ~{}~ — <@{who}>", escape(item)),
                    "Undo",
                    ButtonStyle::Default,
                ),
                None => (format!("☐ {}", escape(item)), "Done", ButtonStyle::Primary),
            };
            blocks.push(Block::Section(line));
            blocks.push(Block::Actions(vec![Button::new(
                label,
                self.button_id(i),
                style,
            )]));
        }
        Message {
            text: title,
            blocks,
        }
    }
}

/// Parses a checklist button id: `checklist:<id>:<index>`.
pub fn parse_button(action_id: &str) -> Option<(&str, usize)> {
    let rest = action_id.strip_prefix("checklist:")?;
    let (id, index) = rest.rsplit_once(':')?;
    Some((id, index.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list() -> Checklist {
        Checklist {
            id: "c1".into(),
            name: "post-incident".into(),
            title: "Post-incident checklist".into(),
            items: vec![
                "Document incident timeline".into(),
                "Identify root cause".into(),
            ],
            done: vec![None, None],
        }
    }

    #[test]
    fn ticking_twice_unticks() {
        let once = list().toggled(1, "U1").unwrap();
        assert_eq!(once.done, [None, Some("U1".to_owned())]);
        assert_eq!(once.toggled(1, "U2").unwrap().done, [None, None]);
        assert!(list().toggled(5, "U1").is_none());
    }

    #[test]
    fn the_message_shows_progress_and_who_ticked() {
        let m = list().toggled(0, "U1").unwrap().render();
        assert_eq!(m.text, "Post-incident checklist (1/2 done)");
        assert_eq!(
            m.blocks[1],
            Block::Section("☑ ~Document incident timeline~ — <@U1>".into())
        );
        let Block::Actions(buttons) = &m.blocks[4] else {
            panic!()
        };
        assert_eq!(buttons[0].action_id, "checklist:c1:1");
        assert_eq!(parse_button("checklist:c1:1"), Some(("c1", 1)));
        assert_eq!(parse_button("checklist:c1:x"), None);
    }
}
