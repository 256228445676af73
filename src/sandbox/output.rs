//! A command's output kept as its first and last bytes: memory stays bounded however much the
//! command prints (the middle is counted, not stored).

use std::collections::VecDeque;

/// Collects a byte stream, keeping `limit / 2` bytes from its start and `limit / 2` from its end.
#[derive(Debug)]
pub(crate) struct HeadTail {
    head: Vec<u8>,
    tail: VecDeque<u8>,
    head_cap: usize,
    tail_cap: usize,
    total: u64,
}

impl HeadTail {
    pub(crate) fn new(limit: usize) -> Self {
        let head_cap = limit / 2;
        HeadTail {
            head: Vec::with_capacity(head_cap),
            tail: VecDeque::with_capacity(limit - head_cap),
            head_cap,
            tail_cap: limit - head_cap,
            total: 0,
        }
    }

    pub(crate) fn push(&mut self, mut bytes: &[u8]) {
        self.total += bytes.len() as u64;
        let room = self.head_cap - self.head.len();
        let into_head = room.min(bytes.len());
        self.head.extend_from_slice(&bytes[..into_head]);
        bytes = &bytes[into_head..];
        if bytes.len() >= self.tail_cap {
            self.tail.clear();
            self.tail.extend(&bytes[bytes.len() - self.tail_cap..]);
            return;
        }
        let overflow = (self.tail.len() + bytes.len()).saturating_sub(self.tail_cap);
        self.tail.drain(..overflow);
        self.tail.extend(bytes);
    }

    /// The kept output: head, tail, whether bytes between them were dropped, and the total.
    pub(crate) fn finish(self) -> super::Output {
        let kept = (self.head.len() + self.tail.len()) as u64;
        let tail: Vec<u8> = self.tail.into();
        super::Output {
            head: String::from_utf8_lossy(&self.head).into_owned(),
            tail: String::from_utf8_lossy(&tail).into_owned(),
            truncated: self.total > kept,
            total_bytes: self.total,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_output_is_kept_whole() {
        let mut out = HeadTail::new(16);
        out.push(b"hello ");
        out.push(b"world");
        let out = out.finish();
        assert_eq!(format!("{}{}", out.head, out.tail), "hello world");
        assert!(!out.truncated);
        assert_eq!(out.total_bytes, 11);
    }

    #[test]
    fn long_output_keeps_both_ends() {
        let mut out = HeadTail::new(8);
        for chunk in [&b"abc"[..], b"defgh", b"ijklmnop", b"qr", b"stuvwxyz"] {
            out.push(chunk);
        }
        let out = out.finish();
        assert_eq!(out.head, "abcd");
        assert_eq!(out.tail, "wxyz");
        assert!(out.truncated);
        assert_eq!(out.total_bytes, 26);
    }
}
