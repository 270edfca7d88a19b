//! What a requester tells the person it asks for secrets: a reason for the request, and per key
//! a description and a help link. The Studio shows them next to the password fields, so they
//! are plain text and https links only, checked once as a request comes in.

use crate::server::error::AppError;

/// Most characters of a reason or a description.
pub const MAX_NOTE_CHARS: usize = 500;
/// Most characters of a help link.
pub const MAX_HELP_URL_CHARS: usize = 2000;

/// A reason or a description: plain text of at most [`MAX_NOTE_CHARS`] characters, with no
/// control character but the newline and no bidirectional override (which would make the text
/// read otherwise than it was written). Surrounding whitespace is dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note(String);

impl Note {
    /// Parses the text of `field` (named in the error); blank text is no note.
    pub fn parse(field: &str, raw: &str) -> Result<Option<Note>, AppError> {
        let text = raw.trim();
        if text.chars().any(|c| (c.is_control() && c != '\n') || is_bidi_control(c)) {
            return Err(AppError::BadRequest(format!(
                "{field} must be plain text: no control characters other than a newline"
            )));
        }
        if text.chars().count() > MAX_NOTE_CHARS {
            return Err(AppError::BadRequest(format!("{field} must be at most {MAX_NOTE_CHARS} characters")));
        }
        Ok((!text.is_empty()).then(|| Note(text.to_string())))
    }

    /// The text.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// The embeddings, overrides and isolates of Unicode's bidirectional algorithm.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// A help link: an absolute `https://` URL with a host and without credentials, at most
/// [`MAX_HELP_URL_CHARS`] characters, kept as the URL standard writes it (an international
/// host in its `xn--` form, so a look-alike name shows as what it is).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HelpUrl(String);

impl HelpUrl {
    /// Parses the link of `field` (named in the error); an empty one is no link.
    pub fn parse(field: &str, raw: &str) -> Result<Option<HelpUrl>, AppError> {
        if raw.is_empty() {
            return Ok(None);
        }
        let refused = || AppError::BadRequest(format!("{field} must be an absolute https:// URL with a host"));
        if raw.chars().count() > MAX_HELP_URL_CHARS {
            return Err(AppError::BadRequest(format!("{field} must be at most {MAX_HELP_URL_CHARS} characters")));
        }
        // The URL parser would quietly drop whitespace and control characters; a link that
        // holds any is not taken at all.
        if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(refused());
        }
        let url = url::Url::parse(raw).map_err(|_| refused())?;
        let host = url.host_str().is_some_and(|h| !h.is_empty());
        if url.scheme() != "https" || !host {
            return Err(refused());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(AppError::BadRequest(format!("{field} must not carry a user name or password")));
        }
        let link = String::from(url);
        if link.chars().count() > MAX_HELP_URL_CHARS {
            return Err(AppError::BadRequest(format!("{field} must be at most {MAX_HELP_URL_CHARS} characters")));
        }
        Ok(Some(HelpUrl(link)))
    }

    /// The link as text.
    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(raw: &str) -> Result<Option<String>, String> {
        Note::parse("reason", raw).map(|n| n.map(Note::into_string)).map_err(|e| e.to_string())
    }

    fn link(raw: &str) -> Result<Option<String>, String> {
        HelpUrl::parse("helpUrl", raw).map(|u| u.map(HelpUrl::into_string)).map_err(|e| e.to_string())
    }

    #[test]
    fn a_note_keeps_its_text_and_newlines_without_surrounding_whitespace() {
        assert_eq!(note("  Deploy to <prod>\nneeds it. ").unwrap().as_deref(), Some("Deploy to <prod>\nneeds it."));
    }

    #[test]
    fn a_blank_note_is_no_note() {
        assert_eq!(note(" \n ").unwrap(), None);
    }

    #[test]
    fn a_note_of_five_hundred_characters_is_taken_and_one_more_is_refused() {
        assert!(note(&"é".repeat(500)).unwrap().is_some());
        let err = note(&"é".repeat(501)).unwrap_err();
        assert!(err.contains("reason must be at most 500 characters"), "{err}");
    }

    #[test]
    fn control_characters_other_than_a_newline_are_refused() {
        for raw in ["a\u{0}b", "a\rb", "a\tb", "a\u{1b}[31mb", "a\u{7f}b", "a\u{85}b", "a\u{202e}b", "a\u{2066}b"] {
            let err = note(raw).unwrap_err();
            assert!(err.contains("reason must be plain text"), "{raw:?}: {err}");
        }
    }

    #[test]
    fn an_https_link_with_a_host_is_taken_as_the_standard_writes_it() {
        assert_eq!(
            link("https://platform.openai.com/api-keys?x=1#top").unwrap().as_deref(),
            Some("https://platform.openai.com/api-keys?x=1#top")
        );
        assert_eq!(link("HTTPS://Example.COM").unwrap().as_deref(), Some("https://example.com/"));
        assert_eq!(link("https://bücher.example/").unwrap().as_deref(), Some("https://xn--bcher-kva.example/"));
        assert_eq!(link("").unwrap(), None);
    }

    #[test]
    fn links_that_are_not_absolute_https_urls_are_refused() {
        for raw in [
            "http://example.com/",
            "javascript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "//example.com/",
            "/relative",
            "example.com",
            "https://",
            "https://exa mple.com/",
            "https://example.com/\n",
            " https://example.com/",
        ] {
            let err = link(raw).unwrap_err();
            assert!(err.contains("helpUrl must be an absolute https:// URL"), "{raw:?}: {err}");
        }
    }

    #[test]
    fn a_link_with_credentials_is_refused() {
        let err = link("https://docs.example.com@evil.example/").unwrap_err();
        assert!(err.contains("helpUrl must not carry a user name or password"), "{err}");
    }

    #[test]
    fn a_link_over_two_thousand_characters_is_refused() {
        let long = format!("https://example.com/{}", "a".repeat(2000));
        assert!(link(&long).unwrap_err().contains("helpUrl must be at most 2000 characters"));
        let fits = format!("https://example.com/{}", "a".repeat(2000 - 20));
        assert!(link(&fits).unwrap().is_some());
    }
}
