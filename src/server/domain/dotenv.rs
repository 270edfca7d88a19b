//! The dotenv format of `export` and `import`.
//!
//! `export` writes `KEY='value'` lines: POSIX single quotes, with each `'` of the value written
//! `'\''` (close, an escaped quote, reopen). Inside single quotes no shell (sh, bash, dash, zsh)
//! expands or runs anything, and newlines are kept, so `set -a; . ./file` yields the exact
//! bytes and executes nothing.
//!
//! `import` reads what `export` writes, byte for byte, and the common dotenv dialects: blank
//! lines, `#` comments, an `export ` prefix, bare values, single-quoted literals (which may
//! span lines) and double-quoted values with `\n`, `\r`, `\"`, `\\` and `\$` escapes. Quoted
//! and bare pieces next to each other join, as in a shell.

use zeroize::Zeroizing;

/// A value as one shell word that stands for exactly its bytes: `'...'`, with `'\''` for `'`.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// Parses a dotenv text into `(key, value)` pairs, in order; the error names the line.
pub fn parse(text: &str) -> Result<Vec<(String, Zeroizing<String>)>, String> {
    let mut parser = Parser { chars: text.chars().collect(), pos: 0, line: 1 };
    let mut pairs = Vec::new();
    while let Some(pair) = parser.next_pair()? {
        pairs.push(pair);
    }
    // The buffer held the whole text, values included.
    parser.chars.iter_mut().for_each(|c| *c = '\0');
    Ok(pairs)
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
    line: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn error(&self, line: usize, message: &str) -> String {
        format!("line {line}: {message}")
    }

    fn skip_to_line_end(&mut self) {
        while self.peek().is_some_and(|c| c != '\n') {
            self.bump();
        }
    }

    /// The next `KEY=value`, skipping blank lines and comments; `None` at the end.
    fn next_pair(&mut self) -> Result<Option<(String, Zeroizing<String>)>, String> {
        loop {
            match self.peek() {
                None => return Ok(None),
                Some(c) if c.is_whitespace() => {
                    self.bump();
                }
                Some('#') => self.skip_to_line_end(),
                Some(_) => break,
            }
        }
        let line = self.line;
        let mut key = String::new();
        while let Some(c) = self.peek() {
            if c == '=' || c == '\n' {
                break;
            }
            key.push(c);
            self.bump();
        }
        if self.bump() != Some('=') {
            return Err(self.error(line, "expected KEY=value"));
        }
        let key = key.trim();
        let key = key.strip_prefix("export ").map(str::trim_start).unwrap_or(key).to_string();
        let value = self.value(line)?;
        Ok(Some((key, value)))
    }

    /// A value: quoted and bare pieces up to the end of the line (or a ` #` comment).
    fn value(&mut self, line: usize) -> Result<Zeroizing<String>, String> {
        while self.peek().is_some_and(|c| c == ' ' || c == '\t') {
            self.bump();
        }
        let mut out = Zeroizing::new(String::new());
        // Bare text is trimmed at the end, quoted text never: `keep` is the length that must
        // stay.
        let mut keep = 0;
        loop {
            match self.peek() {
                None | Some('\n') => break,
                Some('\r') if self.chars.get(self.pos + 1) == Some(&'\n') => {
                    self.bump();
                }
                Some('#') if self.after_blank() => {
                    self.skip_to_line_end();
                    break;
                }
                Some('\'') => {
                    self.bump();
                    loop {
                        match self.bump() {
                            None => return Err(self.error(line, "unterminated single-quoted value")),
                            Some('\'') => break,
                            Some(c) => out.push(c),
                        }
                    }
                    keep = out.len();
                }
                Some('"') => {
                    self.bump();
                    loop {
                        match self.bump() {
                            None => return Err(self.error(line, "unterminated double-quoted value")),
                            Some('"') => break,
                            Some('\\') => match self.bump() {
                                None => return Err(self.error(line, "unterminated escape")),
                                Some('n') => out.push('\n'),
                                Some('r') => out.push('\r'),
                                Some(other) => out.push(other),
                            },
                            Some(c) => out.push(c),
                        }
                    }
                    keep = out.len();
                }
                Some('\\') => {
                    self.bump();
                    match self.bump() {
                        None | Some('\n') => {}
                        Some(c) => {
                            out.push(c);
                            keep = out.len();
                        }
                    }
                }
                Some(c) => {
                    self.bump();
                    out.push(c);
                    if !c.is_whitespace() {
                        keep = out.len();
                    }
                }
            }
        }
        out.truncate(keep);
        Ok(out)
    }

    /// Whether the character before the cursor is a blank (a `#` there starts a comment).
    fn after_blank(&self) -> bool {
        self.pos == 0 || self.chars.get(self.pos - 1).is_some_and(|c| *c == ' ' || *c == '\t' || *c == '=')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String)> {
        parse(text).unwrap().into_iter().map(|(k, v)| (k, v.to_string())).collect()
    }

    /// Values that a shell would run or reshape if they were written carelessly.
    const HOSTILE: &[&str] = &[
        "`touch pwned`",
        "$(touch pwned)",
        "${HOME}",
        "$HOME",
        "it's \"quoted\" both ways",
        "'",
        "''",
        "\\",
        "back\\slash\\n",
        "line one\nline two\n",
        "# not a comment",
        "value # with hash",
        "  leading and trailing spaces  ",
        "\ttab\t",
        "crlf\r\nline",
        "ünïcödé ✓ 日本",
        "",
        "a'\\''b",
        "!bang !! history",
        "semi; colon & amp | pipe > redirect",
    ];

    #[test]
    fn a_value_is_one_single_quoted_word() {
        assert_eq!(quote("plain"), "'plain'");
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("$(x)"), "'$(x)'");
    }

    #[test]
    fn what_export_writes_import_reads_back_byte_for_byte() {
        for value in HOSTILE {
            let text = format!("KEY={}\n", quote(value));
            assert_eq!(pairs(&text), [("KEY".to_string(), value.to_string())], "{value:?} as {text:?}");
        }
        let text: String = HOSTILE.iter().enumerate().map(|(i, v)| format!("K{i}={}\n", quote(v))).collect();
        let read = pairs(&text);
        assert_eq!(read.len(), HOSTILE.len());
        for (i, (key, value)) in read.iter().enumerate() {
            assert_eq!((key.as_str(), value.as_str()), (format!("K{i}").as_str(), HOSTILE[i]));
        }
    }

    #[test]
    fn common_dotenv_dialects_are_read() {
        let text = "# comment\n\nexport A=\"sk \\\"live\\\"\\n\\$HOME\\\\x\"\nB='lit $x'\nC=bare\nD=bare # comment\nE=  spaced  \n";
        assert_eq!(
            pairs(text),
            [
                ("A".into(), "sk \"live\"\n$HOME\\x".into()),
                ("B".into(), "lit $x".into()),
                ("C".into(), "bare".into()),
                ("D".into(), "bare".into()),
                ("E".into(), "spaced".into()),
            ]
        );
    }

    #[test]
    fn a_broken_line_is_an_error_naming_it() {
        assert_eq!(parse("A=1\nnot a pair\n").unwrap_err(), "line 2: expected KEY=value");
        assert!(parse("A=\"open").unwrap_err().contains("unterminated"));
        assert!(parse("A=1\nB='open\n").unwrap_err().starts_with("line 2: unterminated"));
    }
}
