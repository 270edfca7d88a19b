//! Markdown documents rendered to HTML. Raw HTML in the source is shown as text, never
//! interpreted, so a document cannot inject markup or scripts.

use leptos::prelude::*;
use pulldown_cmark::{html, Event, Options, Parser};

/// Renders markdown to safe HTML.
pub fn to_safe_html(markdown: &str) -> String {
    let parser = Parser::new_ext(markdown, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH).map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        other => other,
    });
    let mut out = String::with_capacity(markdown.len() * 2);
    html::push_html(&mut out, parser);
    out
}

/// A markdown document.
#[component]
pub fn Markdown(text: String) -> impl IntoView {
    view! { <div class="markdown" inner_html=to_safe_html(&text)></div> }
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
    fn tables_render() {
        let html = to_safe_html("| Key | Status |\n|---|---|\n| `A` | Stored |\n");
        assert!(html.contains("<table>") && html.contains("<code>A</code>"));
    }
}
