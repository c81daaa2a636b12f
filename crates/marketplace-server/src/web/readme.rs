//! Readmes as the catalogue shows them: read from the archive (see
//! [`marketplace_client::MarketplaceClient::readme`]), rendered from Markdown by
//! pulldown-cmark, sanitized by ammonia, cut to fit a page, and kept by archive hash (an
//! archive never changes, so neither does its readme).

use std::borrow::Cow;
use std::sync::{Arc, RwLock};

use marketplace_core::{PackageMetadata, Result};

use crate::AppState;
use crate::cache::{Bounded, Cost};

/// Most bytes of a readme's source read from its archive.
const MAX_SOURCE_BYTES: usize = 64 * 1024;

/// Most bytes of rendered readme on a page: with the rest of the page, under 100 KB.
const MAX_HTML_BYTES: usize = 72 * 1024;

/// Most bytes of rendered readmes kept in memory.
const MAX_CACHE_BYTES: usize = 64 * 1024 * 1024;

/// A readme ready for a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rendered {
    /// Sanitized HTML.
    pub(crate) html: String,
    /// The file's path in the archive.
    pub(crate) path: String,
    /// The file's size, when only its beginning is shown.
    pub(crate) cut_from: Option<u64>,
}

/// A version's readme, or the knowledge that it has none.
#[derive(Debug)]
pub(crate) struct Entry(pub(crate) Option<Rendered>);

impl Cost for Entry {
    fn cost(&self) -> usize {
        self.0.as_ref().map_or(0, |r| r.html.len() + r.path.len())
    }
}

/// The rendered readmes, by archive hash.
#[derive(Debug)]
pub(crate) struct Readmes {
    cache: RwLock<Bounded<Entry>>,
}

impl Default for Readmes {
    fn default() -> Self {
        Readmes {
            cache: RwLock::new(Bounded::new(MAX_CACHE_BYTES)),
        }
    }
}

impl Readmes {
    /// The readme of the version `metadata` describes: cached, or read from its archive,
    /// rendered and cached.
    pub(crate) async fn of(
        &self,
        state: &AppState,
        metadata: &PackageMetadata,
    ) -> Result<Arc<Entry>> {
        let key = metadata.checksum.to_string();
        if let Some(entry) = self
            .cache
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(entry);
        }
        let readme = state.client.readme(&metadata.id, MAX_SOURCE_BYTES).await?;
        let entry = Arc::new(Entry(readme.map(|readme| {
            let size = readme.size;
            let (html, cut) = render(&readme.text, readme.is_markdown());
            Rendered {
                html,
                path: readme.path,
                cut_from: (readme.truncated || cut).then_some(size),
            }
        })));
        self.cache
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, Arc::clone(&entry));
        Ok(entry)
    }
}

/// Sanitized HTML of a readme, and whether it had to be cut to fit [`MAX_HTML_BYTES`].
/// Markdown is rendered first; plain text becomes one preformatted block. The source is cut
/// at line ends until the HTML fits.
pub(crate) fn render(source: &str, markdown: bool) -> (String, bool) {
    let source = inert(source);
    let mut take = source.len();
    loop {
        let part = &source[..take];
        let html = if markdown {
            sanitize(&markdown_html(part))
        } else {
            maud::html! { pre { (part) } }.into_string()
        };
        if html.len() <= MAX_HTML_BYTES || take == 0 {
            return (html, take < source.len());
        }
        // Shrink in proportion to the overshoot, at a line end (else a character boundary).
        let goal = take * MAX_HTML_BYTES / html.len() * 9 / 10;
        take = source[..goal.min(take - 1)]
            .rfind('\n')
            .unwrap_or_else(|| floor_char_boundary(&source, goal.min(take - 1)));
    }
}

fn floor_char_boundary(s: &str, mut at: usize) -> usize {
    while at > 0 && !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn markdown_html(source: &str) -> String {
    use pulldown_cmark::{Options, Parser, html};
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_FOOTNOTES;
    let mut out = String::with_capacity(source.len() * 3 / 2);
    html::push_html(&mut out, Parser::new_ext(source, options));
    out
}

/// Package HTML made safe: ammonia's allow-list (no script, style, iframe, form, SVG or event
/// handler; URLs only of safe schemes), links marked `nofollow` and opening nothing with our
/// origin, relative links (which would point into this server) dropped but for `#fragments`.
fn sanitize(html: &str) -> String {
    let clean = ammonia::Builder::default()
        .link_rel(Some("nofollow noopener noreferrer"))
        .url_relative(ammonia::UrlRelative::Custom(Box::new(keep_fragments)))
        .clean(html)
        .to_string();
    images_have_alt(clean)
}

/// Every `<img>` with an `alt` (empty, decorative, when the author gave none): what screen
/// readers need. The sanitizer's output escapes every `<` of text, so `<img` only opens a tag,
/// and its attributes are quoted, so a `>` ends it.
fn images_have_alt(html: String) -> String {
    if !html.contains("<img") {
        return html;
    }
    let mut out = String::with_capacity(html.len() + 64);
    let mut rest = html.as_str();
    while let Some(at) = rest.find("<img") {
        let (before, tag) = rest.split_at(at);
        out.push_str(before);
        let end = tag.find('>').map_or(tag.len(), |i| i + 1);
        let (tag, after) = tag.split_at(end);
        if tag.contains(" alt=\"") {
            out.push_str(tag);
        } else {
            out.push_str("<img alt=\"\"");
            out.push_str(&tag["<img".len()..]);
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// A relative URL kept: only a `#fragment` (within the readme).
fn keep_fragments(url: &str) -> Option<Cow<'_, str>> {
    url.starts_with('#').then_some(Cow::Borrowed(url))
}

/// Text from a package with its bidirectional embedding, override and isolate controls shown
/// as their code points: none of them can reorder what the page shows around them (a
/// description that reads one way and means another).
pub(crate) fn inert(text: &str) -> Cow<'_, str> {
    let is_control = |c: char| matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
    if !text.chars().any(is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_control(c) {
            out.push_str(&format!("[U+{:04X}]", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_markdown_is_rendered_inert() {
        let source = "# Title\n\n<script>alert(1)</script>\n\n<img src=x onerror=alert(2)>\n\n\
             [click](javascript:alert(3)) [rel](docs/guide.md) [anchor](#usage)\n\n\
             <svg><script>alert(4)</script></svg>\n\n<a href=\"https://example.com\" onclick=\"alert(5)\">ok</a>\n";
        let (html, cut) = render(source, true);
        assert!(!cut);
        for bad in [
            "<script",
            "onerror",
            "javascript:",
            "<svg",
            "onclick",
            "alert(1)",
            "docs/guide.md",
        ] {
            assert!(!html.contains(bad), "{bad} survived: {html}");
        }
        assert!(html.contains("<h1>Title</h1>"), "{html}");
        assert!(html.contains("href=\"#usage\""), "{html}");
        assert!(
            html.contains("href=\"https://example.com\" rel=\"nofollow noopener noreferrer\""),
            "{html}"
        );
    }

    #[test]
    fn a_long_readme_is_cut_to_fit_a_page() {
        let source = "Some *emphasis* and a [link](https://example.com).\n".repeat(20_000);
        let (html, cut) = render(&source, true);
        assert!(cut);
        assert!(html.len() <= MAX_HTML_BYTES, "{} bytes", html.len());
        assert!(html.len() > MAX_HTML_BYTES / 2, "{} bytes", html.len());
        let (plain, cut) = render(&"<b>x</b>\n".repeat(40_000), false);
        assert!(cut && plain.starts_with("<pre>&lt;b&gt;") && plain.len() <= MAX_HTML_BYTES);
    }

    #[test]
    fn every_image_has_an_alt() {
        let (html, _) = render(
            "<img src=\"https://example.com/a.png\">\n\n![badge](https://example.com/b.svg)\n",
            true,
        );
        assert!(
            html.contains("<img alt=\"\" src=\"https://example.com/a.png\">"),
            "{html}"
        );
        assert!(html.contains("alt=\"badge\""), "{html}");
        assert_eq!(html.matches("alt=").count(), 2, "{html}");
    }

    #[test]
    fn bidirectional_controls_are_shown_not_obeyed() {
        assert_eq!(inert("plain"), "plain");
        assert_eq!(inert("a\u{202E}b\u{2066}c"), "a[U+202E]b[U+2066]c");
    }
}
