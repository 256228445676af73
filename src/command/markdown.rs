//! Just enough CommonMark to know which lines of a comment a reader sees as plain text.
//!
//! [`pulldown_cmark`] parses the comment; from its events every line is classified (text,
//! blank, code, quote, HTML comment block) and the inline regions that hide text inside a
//! paragraph are collected: code spans and HTML comments, both of which may run over several
//! lines. One deliberate difference from a renderer: a line that does not start with `>` is
//! not a quote line even where CommonMark continues the quote's paragraph onto it (a "lazy"
//! line), because what someone typed at the start of their own line is theirs, not a quote.

use std::ops::Range;

use pulldown_cmark::{Event, Options, Parser, Tag};

/// What a line is, as far as commands are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LineKind {
    /// Paragraph or heading text: the only place a command can start.
    Text,
    /// Only spaces and tabs.
    Blank,
    /// A fenced code block (including its fences, and everything after an unclosed fence) or an
    /// indented code block (4+ columns of indentation).
    Code,
    /// A block-quote line (`>` after at most 3 spaces).
    Quote,
    /// An HTML comment block: from a line starting with `<!--` to the line holding `-->`.
    Comment,
}

/// An inline region that hides what it covers from being a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MaskKind {
    /// `` `code` ``: shown, but as code.
    CodeSpan,
    /// `<!-- … -->`: not shown at all.
    Comment,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Mask {
    /// Byte offsets into the source.
    pub(super) range: Range<usize>,
    pub(super) kind: MaskKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Line {
    /// Byte offset of the line's first byte.
    pub(super) start: usize,
    /// Byte offset just past the line's text (before `\r\n` or `\n`).
    pub(super) end: usize,
    /// Byte offset of the next line (past the line ending).
    pub(super) next: usize,
    /// Columns of leading indentation (a tab advances to the next multiple of 4).
    pub(super) indent: usize,
    /// Byte offset of the first byte after the indentation.
    pub(super) content: usize,
    pub(super) kind: LineKind,
}

/// A scanned comment body.
#[derive(Debug)]
pub(super) struct Document<'a> {
    pub(super) src: &'a str,
    pub(super) lines: Vec<Line>,
    /// Sorted by start, never overlapping.
    pub(super) masks: Vec<Mask>,
}

impl<'a> Document<'a> {
    pub(super) fn scan(src: &'a str) -> Self {
        let mut doc = Document {
            src,
            lines: split_lines(src),
            masks: Vec::new(),
        };
        for (event, range) in Parser::new_ext(src, Options::empty()).into_offset_iter() {
            match event {
                Event::Start(Tag::CodeBlock(_)) => doc.mark(range, LineKind::Code, |_| true),
                Event::Start(Tag::BlockQuote(_)) => {
                    doc.mark(range, LineKind::Quote, |content| content.starts_with('>'));
                }
                Event::Start(Tag::HtmlBlock) => {
                    if src[range.clone()].trim_start().starts_with("<!--") {
                        doc.mark(range, LineKind::Comment, |_| true);
                    } else {
                        // Other HTML is shown (as HTML): only the comments inside it hide.
                        doc.mask_comments_in(range);
                    }
                }
                Event::Code(_) => doc.push_mask(range, MaskKind::CodeSpan),
                Event::InlineHtml(html) if html.starts_with("<!--") || doc.in_open_comment() => {
                    doc.push_mask(range, MaskKind::Comment);
                }
                _ => {}
            }
        }
        doc
    }

    /// Give `kind` to every line overlapping `range` whose content passes `keep`.
    fn mark(&mut self, range: Range<usize>, kind: LineKind, keep: impl Fn(&str) -> bool) {
        let first = self.lines.partition_point(|l| l.next <= range.start);
        for line in self.lines[first..]
            .iter_mut()
            .take_while(|l| l.start < range.end)
        {
            if keep(&self.src[line.content..line.end]) {
                line.kind = kind;
            }
        }
    }

    /// Whether the last mask is an inline HTML comment still waiting for its `-->` (the parser
    /// hands a comment over several lines out one piece per line).
    fn in_open_comment(&self) -> bool {
        self.masks.last().is_some_and(|m| {
            m.kind == MaskKind::Comment && !self.src[m.range.clone()].ends_with("-->")
        })
    }

    /// Add a mask, joining it to the last one when it continues that one.
    fn push_mask(&mut self, range: Range<usize>, kind: MaskKind) {
        if let Some(last) = self.masks.last_mut()
            && last.kind == kind
            && kind == MaskKind::Comment
            && !self.src[last.range.clone()].ends_with("-->")
            && self.src[last.range.end..range.start].trim().is_empty()
        {
            last.range.end = range.end;
            return;
        }
        self.masks.push(Mask { range, kind });
    }

    /// Mask every `<!-- … -->` inside `range` (raw HTML the parser does not look into).
    fn mask_comments_in(&mut self, range: Range<usize>) {
        let mut at = range.start;
        while let Some(open) = self.src[at..range.end].find("<!--") {
            let start = at + open;
            // `<!-->` and `<!--->` are complete comments too, hence the search from +2.
            let Some(close) = self.src[start + 2..range.end].find("-->") else {
                break;
            };
            let end = start + 2 + close + 3;
            self.masks.push(Mask {
                range: start..end,
                kind: MaskKind::Comment,
            });
            at = end;
        }
    }

    /// Whether the byte at `pos` lies inside a code span or an inline HTML comment.
    pub(super) fn is_masked(&self, pos: usize) -> bool {
        let at = self.masks.partition_point(|m| m.range.end <= pos);
        self.masks.get(at).is_some_and(|m| m.range.start <= pos)
    }

    /// `src[range]` as a reader sees it: HTML comments removed (an HTML comment block leaves
    /// one empty line, so the paragraphs around it stay apart), `\r\n` turned into `\n`. Code,
    /// quotes and everything else are kept verbatim.
    pub(super) fn visible_text(&self, range: Range<usize>) -> String {
        // (hidden bytes, what stands in for them), by start.
        let mut hidden: Vec<(Range<usize>, &str)> = Vec::new();
        let first_line = self.lines.partition_point(|l| l.next <= range.start);
        for line in self.lines[first_line..]
            .iter()
            .take_while(|l| l.start < range.end)
        {
            if line.kind != LineKind::Comment {
                continue;
            }
            match hidden.last_mut() {
                Some((run, "\n")) if run.end == line.start => run.end = line.next,
                _ => hidden.push((line.start..line.next, "\n")),
            }
        }
        let first_mask = self.masks.partition_point(|m| m.range.end <= range.start);
        for mask in self.masks[first_mask..]
            .iter()
            .take_while(|m| m.range.start < range.end)
        {
            if mask.kind == MaskKind::Comment {
                hidden.push((mask.range.clone(), ""));
            }
        }
        hidden.sort_by_key(|(r, _)| r.start);

        let mut out = String::with_capacity(range.len());
        let mut pos = range.start;
        for (h, stand_in) in hidden {
            let h_start = h.start.max(pos);
            let h_end = h.end.min(range.end);
            if h_start >= h_end {
                continue;
            }
            out.push_str(&self.src[pos..h_start]);
            out.push_str(stand_in);
            pos = h_end;
        }
        out.push_str(&self.src[pos..range.end]);
        if out.contains('\r') {
            out = out.replace("\r\n", "\n");
        }
        out
    }
}

/// Columns of indentation and the bytes they take (spaces and tabs only).
fn indentation(text: &str) -> (usize, usize) {
    let mut columns = 0;
    let mut bytes = 0;
    for b in text.bytes() {
        match b {
            b' ' => columns += 1,
            b'\t' => columns += 4 - columns % 4,
            _ => break,
        }
        bytes += 1;
    }
    (columns, bytes)
}

/// Every line of `src` with its offsets and indentation; blank or text until the parser says
/// otherwise.
fn split_lines(src: &str) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut start = 0;
    for raw in src.split_inclusive('\n') {
        let next = start + raw.len();
        let text = raw.strip_suffix('\n').unwrap_or(raw);
        let text = text.strip_suffix('\r').unwrap_or(text);
        let (indent, skipped) = indentation(text);
        lines.push(Line {
            start,
            end: start + text.len(),
            next,
            indent,
            content: start + skipped,
            kind: if skipped == text.len() {
                LineKind::Blank
            } else {
                LineKind::Text
            },
        });
        start = next;
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<LineKind> {
        Document::scan(src).lines.iter().map(|l| l.kind).collect()
    }

    #[test]
    fn classifies_lines() {
        use LineKind::*;
        let src = "text\n\n    code\n> quote\n```rust\nin fence\n````\nafter\n<!--\nhidden\n-->\n# Title\n~~~~\n~~~\n~~~~\nend";
        assert_eq!(
            kinds(src),
            vec![
                Text, Blank, Code, Quote, Code, Code, Code, Text, Comment, Comment, Comment, Text,
                Code, Code, Code, Text
            ]
        );
    }

    #[test]
    fn backtick_info_string_is_not_a_fence() {
        assert_eq!(kinds("```a`b\nx"), vec![LineKind::Text, LineKind::Text]);
    }

    #[test]
    fn masks_code_spans_and_comments_across_lines() {
        let src = "a `b\nc` d <!-- e\nf --> g ``h`` \\`i";
        let doc = Document::scan(src);
        let masked: Vec<&str> = doc.masks.iter().map(|m| &src[m.range.clone()]).collect();
        assert_eq!(masked, vec!["`b\nc`", "<!-- e\nf -->", "``h``"]);
    }

    #[test]
    fn unmatched_backticks_and_comments_are_literal() {
        let doc = Document::scan("a `` b ` c <!-- d");
        assert!(doc.masks.is_empty());
    }

    #[test]
    fn visible_text_drops_comments_and_crlf() {
        let src = "a <!-- x -->b\r\n<!--\r\nhidden\r\n-->\r\nc `<!-- kept -->`";
        let doc = Document::scan(src);
        assert_eq!(doc.visible_text(0..src.len()), "a b\n\nc `<!-- kept -->`");
    }
}
