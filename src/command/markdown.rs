//! Just enough CommonMark to know which lines of a comment a reader sees as plain text.
//!
//! The scanner classifies every line (text, blank, code, quote, HTML comment block) and
//! collects the inline regions that hide text inside a paragraph: code spans and HTML comments,
//! both of which may run over several lines. It is a single pass plus one inline pass per
//! paragraph, linear in the input (code-span closers are found by binary search, and a failed
//! search for `-->` is never repeated).

use std::collections::HashMap;
use std::ops::Range;

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

enum State {
    Normal,
    Fence { ch: u8, len: usize },
    CommentBlock,
}

impl<'a> Document<'a> {
    pub(super) fn scan(src: &'a str) -> Self {
        let mut doc = Document {
            src,
            lines: Vec::new(),
            masks: Vec::new(),
        };
        let mut state = State::Normal;
        // Byte range of the paragraph being collected (consecutive text lines).
        let mut para: Option<Range<usize>> = None;
        let mut start = 0;
        for raw in src.split_inclusive('\n') {
            let next = start + raw.len();
            let text = raw.strip_suffix('\n').unwrap_or(raw);
            let text = text.strip_suffix('\r').unwrap_or(text);
            let end = start + text.len();
            let (indent, skipped) = indentation(text);
            let content_start = start + skipped;
            let content = &text[skipped..];
            let mut line = Line {
                start,
                end,
                next,
                indent,
                content: content_start,
                kind: LineKind::Text,
            };
            start = next;

            match state {
                State::Fence { ch, len } => {
                    line.kind = LineKind::Code;
                    if indent < 4 && is_fence_close(content, ch, len) {
                        state = State::Normal;
                    }
                    doc.lines.push(line);
                    continue;
                }
                State::CommentBlock => {
                    line.kind = LineKind::Comment;
                    if text.contains("-->") {
                        state = State::Normal;
                    }
                    doc.lines.push(line);
                    continue;
                }
                State::Normal => {}
            }

            let mut in_paragraph = false;
            if content.is_empty() {
                line.kind = LineKind::Blank;
            } else if indent >= 4 {
                // Conservative: an indented line is code even where CommonMark would call it a
                // paragraph continuation. Quiet beats clever.
                line.kind = LineKind::Code;
            } else if content.starts_with('>') {
                line.kind = LineKind::Quote;
            } else if let Some((ch, len)) = fence_open(content) {
                line.kind = LineKind::Code;
                state = State::Fence { ch, len };
            } else if content.starts_with("<!--") {
                line.kind = LineKind::Comment;
                if !content.contains("-->") {
                    state = State::CommentBlock;
                }
            } else if is_heading(content) {
                // A heading is a paragraph of its own.
                doc.flush(&mut para);
                doc.scan_inline(content_start..end);
            } else {
                in_paragraph = true;
            }

            if in_paragraph {
                match &mut para {
                    Some(range) => range.end = end,
                    None => para = Some(content_start..end),
                }
            } else {
                doc.flush(&mut para);
            }
            doc.lines.push(line);
        }
        doc.flush(&mut para);
        doc
    }

    fn flush(&mut self, para: &mut Option<Range<usize>>) {
        if let Some(range) = para.take() {
            self.scan_inline(range);
        }
    }

    /// Finds code spans and HTML comments in one paragraph, left to right as CommonMark does.
    fn scan_inline(&mut self, range: Range<usize>) {
        let base = range.start;
        let text = &self.src.as_bytes()[range];
        if !text.iter().any(|&b| b == b'`' || b == b'<') {
            return;
        }
        // Closers: every maximal backtick run, by length, in order.
        let mut closers: HashMap<usize, Vec<usize>> = HashMap::new();
        let mut i = 0;
        while i < text.len() {
            if text[i] == b'`' {
                let len = run_len(text, i, b'`');
                closers.entry(len).or_default().push(i);
                i += len;
            } else {
                i += 1;
            }
        }

        let mut comment_close_exhausted = false;
        let mut i = 0;
        while i < text.len() {
            match text[i] {
                b'\\' if text.get(i + 1).is_some_and(u8::is_ascii_punctuation) => i += 2,
                b'`' => {
                    let len = run_len(text, i, b'`');
                    let close = closers.get(&len).and_then(|positions| {
                        let at = positions.partition_point(|&p| p < i + len);
                        positions.get(at).copied()
                    });
                    match close {
                        Some(c) => {
                            self.masks.push(Mask {
                                range: base + i..base + c + len,
                                kind: MaskKind::CodeSpan,
                            });
                            i = c + len;
                        }
                        None => i += len,
                    }
                }
                b'<' if !comment_close_exhausted && text[i..].starts_with(b"<!--") => {
                    // `<!-->` and `<!--->` are complete comments too, hence the search from +2.
                    match find(&text[i + 2..], b"-->") {
                        Some(k) => {
                            let end = i + 2 + k + 3;
                            self.masks.push(Mask {
                                range: base + i..base + end,
                                kind: MaskKind::Comment,
                            });
                            i = end;
                        }
                        None => {
                            comment_close_exhausted = true;
                            i += 4;
                        }
                    }
                }
                _ => i += 1,
            }
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

fn run_len(text: &[u8], from: usize, ch: u8) -> usize {
    text[from..].iter().take_while(|&&b| b == ch).count()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// An opening code fence: 3+ backticks (with no backtick in the info string) or 3+ tildes.
fn fence_open(content: &str) -> Option<(u8, usize)> {
    let bytes = content.as_bytes();
    let ch = *bytes.first()?;
    if ch != b'`' && ch != b'~' {
        return None;
    }
    let len = run_len(bytes, 0, ch);
    if len < 3 || (ch == b'`' && bytes[len..].contains(&b'`')) {
        return None;
    }
    Some((ch, len))
}

/// A closing fence: a run of the opening character at least as long, then only whitespace.
fn is_fence_close(content: &str, ch: u8, open_len: usize) -> bool {
    let bytes = content.as_bytes();
    let len = run_len(bytes, 0, ch);
    len >= open_len && bytes[len..].iter().all(|&b| b == b' ' || b == b'\t')
}

/// An ATX heading: 1–6 `#` then a space, a tab or the end of the line.
fn is_heading(content: &str) -> bool {
    let bytes = content.as_bytes();
    let hashes = run_len(bytes, 0, b'#');
    (1..=6).contains(&hashes) && matches!(bytes.get(hashes), None | Some(b' ' | b'\t'))
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
