//! The YAML side of the configuration: serde-saphyr's messages without their location suffix,
//! and the field path of a position, so errors name `trustRoots[0].notary` rather than a line.

use std::borrow::Cow;

/// serde-saphyr's user-facing wording, without its location suffix (the [`At`] prefix has it).
pub(super) fn yaml_message(err: &serde_saphyr::Error) -> String {
    struct NoLocation;
    impl serde_saphyr::Localizer for NoLocation {
        fn attach_location<'a>(
            &self,
            base: Cow<'a, str>,
            _loc: serde_saphyr::Location,
        ) -> Cow<'a, str> {
            base
        }
    }
    struct Plain;
    impl serde_saphyr::MessageFormatter for Plain {
        fn localizer(&self) -> &dyn serde_saphyr::Localizer {
            &NoLocation
        }
        fn format_message<'a>(&self, err: &'a serde_saphyr::Error) -> Cow<'a, str> {
            serde_saphyr::UserMessageFormatter.format_message(err)
        }
    }
    err.render_with_options(serde_saphyr::render_options! {
        formatter: &Plain,
        snippets: serde_saphyr::SnippetMode::Off,
    })
}

/// The field path of the YAML node at `line`:`column` (1-based), as `a.b[2].c`: the last node
/// that starts at or before that position. A mapping key stands for its mapping, so an unknown
/// field is reported at the mapping that holds it (the message names the field).
pub(super) fn yaml_path_at(text: &str, line: u64, column: u64) -> String {
    use serde_saphyr::granit_parser::{Event, Parser};

    #[derive(Clone)]
    enum Seg {
        Key(String),
        Index(usize),
    }
    enum Frame {
        Map { key: String, want_key: bool },
        Seq { next: usize },
    }
    /// A node (scalar, alias or finished collection) completed its slot in `top`.
    fn advance(top: Option<&mut Frame>, key: Option<String>) {
        match top {
            Some(Frame::Map { key: k, want_key }) if *want_key => {
                *k = key.unwrap_or_else(|| "?".to_owned());
                *want_key = false;
            }
            Some(Frame::Map { want_key, .. }) => *want_key = true,
            Some(Frame::Seq { next }) => *next += 1,
            None => {}
        }
    }
    /// A collection used as a mapping key has no name of its own.
    fn complex_key_or(slot: Option<Seg>, is_key: bool) -> Option<Seg> {
        if is_key {
            Some(Seg::Key("?".to_owned()))
        } else {
            slot
        }
    }
    fn render(path: &[Option<Seg>]) -> String {
        let mut s = String::new();
        for seg in path.iter().flatten() {
            match seg {
                Seg::Key(k) if s.is_empty() => s.push_str(k),
                Seg::Key(k) => {
                    s.push('.');
                    s.push_str(k);
                }
                Seg::Index(i) => s.push_str(&format!("[{i}]")),
            }
        }
        s
    }

    let target = (
        usize::try_from(line).unwrap_or(usize::MAX),
        usize::try_from(column.saturating_sub(1)).unwrap_or(usize::MAX),
    );
    let mut frames: Vec<Frame> = Vec::new();
    // One entry per open collection: its slot in its parent (`None` for the document's root).
    let mut path: Vec<Option<Seg>> = Vec::new();
    let mut best: Option<((usize, usize), String)> = None;
    let mut parser = Parser::new_from_str(text);
    while let Some(Ok((event, span))) = parser.next_event() {
        let pos = (span.start.line(), span.start.col());
        let is_node = matches!(
            event,
            Event::Scalar(..)
                | Event::Alias(_)
                | Event::SequenceStart(..)
                | Event::MappingStart(..)
        );
        if !is_node {
            if matches!(event, Event::SequenceEnd | Event::MappingEnd) {
                frames.pop();
                path.pop();
                advance(frames.last_mut(), None);
            }
            continue;
        }
        if pos > target {
            break;
        }
        let (slot, is_key) = match frames.last() {
            Some(Frame::Map { want_key: true, .. }) => (None, true),
            Some(Frame::Map { key, .. }) => (Some(Seg::Key(key.clone())), false),
            Some(Frame::Seq { next }) => (Some(Seg::Index(*next)), false),
            None => (None, false),
        };
        // The first node at a position wins: a mapping and its first key start together.
        if best.as_ref().is_none_or(|(p, _)| pos > *p) {
            let mut here = path.clone();
            here.push(slot.clone());
            best = Some((pos, render(&here)));
        }
        match event {
            Event::Scalar(value, ..) => {
                advance(frames.last_mut(), is_key.then(|| value.into_owned()));
            }
            Event::SequenceStart(..) => {
                path.push(complex_key_or(slot, is_key));
                frames.push(Frame::Seq { next: 0 });
            }
            Event::MappingStart(..) => {
                path.push(complex_key_or(slot, is_key));
                frames.push(Frame::Map {
                    key: String::new(),
                    want_key: true,
                });
            }
            _ => advance(frames.last_mut(), None),
        }
    }
    best.map(|(_, p)| p).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_paths_name_the_node_at_a_position() {
        let text = "trustRoots:\n  - name: a\n    notary:\n      url: x\n      urll: y\n  - name: b\n    notary: {url: [1]}\n";
        // The unknown key `urll` stands for its mapping.
        assert_eq!(yaml_path_at(text, 5, 7), "trustRoots[0].notary");
        // A value names its key.
        assert_eq!(yaml_path_at(text, 4, 12), "trustRoots[0].notary.url");
        // A whole list item.
        assert_eq!(yaml_path_at(text, 6, 5), "trustRoots[1]");
        assert_eq!(yaml_path_at(text, 7, 19), "trustRoots[1].notary.url");
        assert_eq!(yaml_path_at(text, 7, 20), "trustRoots[1].notary.url[0]");
        assert_eq!(yaml_path_at(text, 1, 1), "");
    }
}
