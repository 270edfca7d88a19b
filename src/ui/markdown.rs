//! Markdown documents rendered to HTML, on the server only (the run page's island gets the HTML).
//! Raw HTML in the source is shown as text, never interpreted, so a document cannot inject
//! markup or scripts.

use pulldown_cmark::{html, Event, Options, Parser, Tag, TagEnd};

/// Renders markdown to safe HTML: raw HTML becomes text, and links or images whose target
/// would run script or embed content (`javascript:`, `vbscript:`, `data:`) are dropped, their
/// text kept.
pub fn to_safe_html(markdown: &str) -> String {
    // Links cannot nest in CommonMark, and image ends pair with their starts in order, so a
    // stack of "was this start dropped" flags pairs each end with its start.
    let mut dropped: Vec<bool> = Vec::new();
    let parser =
        Parser::new_ext(markdown, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH).filter_map(move |event| {
            match event {
                Event::Html(raw) | Event::InlineHtml(raw) => Some(Event::Text(raw)),
                Event::Start(Tag::Link { ref dest_url, .. }) | Event::Start(Tag::Image { ref dest_url, .. }) => {
                    let unsafe_target = is_script_url(dest_url);
                    dropped.push(unsafe_target);
                    (!unsafe_target).then_some(event)
                }
                Event::End(TagEnd::Link) | Event::End(TagEnd::Image) => {
                    (!dropped.pop().unwrap_or(false)).then_some(event)
                }
                other => Some(other),
            }
        });
    let mut out = String::with_capacity(markdown.len() * 2);
    html::push_html(&mut out, parser);
    out
}

/// Whether a link target uses a scheme that runs script or embeds content. Browsers ignore
/// leading blanks and control characters and tabs or newlines inside the scheme, so those
/// are ignored here too.
fn is_script_url(url: &str) -> bool {
    let scheme: String = url
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .take_while(|c| *c != ':')
        .collect::<String>()
        .to_ascii_lowercase();
    let has_scheme = url.contains(':');
    has_scheme && matches!(scheme.as_str(), "javascript" | "vbscript" | "data")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_html_in_markdown_is_escaped() {
        let html = to_safe_html("hi <script>alert(1)</script> <img src=x onerror=alert(1)>");
        assert!(!html.contains("<script>") && !html.contains("<img"), "{html}");
        assert!(html.contains("&lt;script&gt;"));
    }

    #[test]
    fn script_and_data_links_are_dropped_and_their_text_kept() {
        for target in [
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            " java\tscript:alert(1)",
            "vbscript:msgbox(1)",
            "data:text/html,<script>x</script>",
        ] {
            let html = to_safe_html(&format!("[click me]({target}) and ![pic]({target}) and <{target}>"));
            assert!(!html.contains("href=") && !html.contains("src="), "{target}: {html}");
            assert!(html.contains("click me"), "{html}");
        }
        let html = to_safe_html("[docs](https://example.com/a) [rel](/workspaces)");
        assert!(html.contains("href=\"https://example.com/a\"") && html.contains("href=\"/workspaces\""), "{html}");
    }

    #[test]
    fn tables_render() {
        let html = to_safe_html("| Key | Status |\n|---|---|\n| `A` | Stored |\n");
        assert!(html.contains("<table>") && html.contains("<code>A</code>"));
    }
}
