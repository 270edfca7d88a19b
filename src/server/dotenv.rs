//! The dotenv format of `export` and `import`: `KEY="value"` lines, double-quoted values with
//! `\\`, `\"`, `\n`, `\r` and `\$` escapes; `import` also takes single-quoted (literal) and bare
//! values, blank lines, `#` comments and an `export ` prefix.

use zeroize::Zeroizing;

/// Escapes a value for a double-quoted dotenv line.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '$' => out.push_str("\\$"),
            c => out.push(c),
        }
    }
    out
}

/// Parses a dotenv text into `(key, value)` pairs, in order; the error names the line.
pub fn parse(text: &str) -> Result<Vec<(String, Zeroizing<String>)>, String> {
    let mut pairs = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let n = index + 1;
        let (key, rest) = line.split_once('=').ok_or_else(|| format!("line {n}: expected KEY=value"))?;
        let value = parse_value(rest.trim()).map_err(|e| format!("line {n}: {e}"))?;
        pairs.push((key.trim().to_string(), value));
    }
    Ok(pairs)
}

fn parse_value(rest: &str) -> Result<Zeroizing<String>, &'static str> {
    let mut out = Zeroizing::new(String::with_capacity(rest.len()));
    if let Some(body) = rest.strip_prefix('"') {
        let mut chars = body.chars();
        loop {
            match chars.next().ok_or("unterminated double-quoted value")? {
                '"' => break,
                '\\' => match chars.next().ok_or("unterminated escape")? {
                    'n' => out.push('\n'),
                    'r' => out.push('\r'),
                    other => out.push(other),
                },
                c => out.push(c),
            }
        }
        if !chars.as_str().trim().is_empty() && !chars.as_str().trim_start().starts_with('#') {
            return Err("text after the closing quote");
        }
    } else if let Some(body) = rest.strip_prefix('\'') {
        let end = body.find('\'').ok_or("unterminated single-quoted value")?;
        out.push_str(&body[..end]);
    } else {
        out.push_str(rest);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_escape_quotes_newlines_and_dollars() {
        assert_eq!(escape("a\"b\nc$d\\e"), "a\\\"b\\nc\\$d\\\\e");
    }

    #[test]
    fn what_export_writes_import_reads_back() {
        let value = "sk \"live\"\n$HOME\\x";
        let text = format!("# comment\n\nexport A=\"{}\"\nB='lit $x'\nC=bare\n", escape(value));
        let pairs = parse(&text).unwrap();
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(pairs, [("A", value), ("B", "lit $x"), ("C", "bare")]);
    }

    #[test]
    fn a_broken_line_is_an_error_naming_it() {
        assert_eq!(parse("A=1\nnot a pair\n").unwrap_err(), "line 2: expected KEY=value");
        assert!(parse("A=\"open").unwrap_err().contains("unterminated"));
    }
}
