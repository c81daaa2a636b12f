//! The download chart: the last 30 days as SVG bars, drawn on the server (no script), with a
//! text alternative for screen readers.

use marketplace_core::DailyDownloads;
use maud::{Markup, html};

const WIDTH: u64 = 300;
const HEIGHT: u64 = 90;
/// Room under the bars for the first and last dates.
const LABELS: u64 = 14;

/// Bars of `days` (oldest first), the tallest filling the height.
pub(crate) fn downloads(days: &[DailyDownloads]) -> Markup {
    let total: u64 = days.iter().map(|d| d.downloads).sum();
    let most = days.iter().map(|d| d.downloads).max().unwrap_or(0).max(1);
    let count = days.len().max(1) as u64;
    let slot = WIDTH / count;
    let bar = slot.saturating_sub(2).max(1);
    let plot = HEIGHT - LABELS;
    let label = format!(
        "Downloads over the last {} days: {total} in all, at most {} in a day",
        days.len(),
        days.iter().map(|d| d.downloads).max().unwrap_or(0)
    );
    html! {
        svg class="chart" role="img" aria-label=(label) viewBox={ "0 0 " (WIDTH) " " (HEIGHT) }
            width=(WIDTH) height=(HEIGHT) xmlns="http://www.w3.org/2000/svg" {
            title { (label) }
            @for (i, day) in days.iter().enumerate() {
                @let h = (day.downloads * plot).div_ceil(most);
                @let x = i as u64 * slot;
                rect x=(x) y=(plot - h) width=(bar) height=(h) {
                    title { (day.date) ": " (day.downloads) }
                }
            }
            @if let (Some(first), Some(last)) = (days.first(), days.last()) {
                text x="0" y=(HEIGHT - 4) { (first.date) }
                text x=(WIDTH) y=(HEIGHT - 4) text-anchor="end" { (last.date) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use marketplace_core::time::{Date, Month};

    #[test]
    fn bars_scale_to_the_busiest_day_and_say_what_they_show() {
        let day = |d: u8, n: u64| {
            DailyDownloads::new(
                Date::from_calendar_date(2026, Month::December, d).expect("date"),
                n,
            )
        };
        let svg = downloads(&[day(1, 0), day(2, 5), day(3, 10)]).into_string();
        assert!(svg.contains("15 in all, at most 10 in a day"), "{svg}");
        assert!(
            svg.contains(&format!("height=\"{}\"", HEIGHT - LABELS)),
            "{svg}"
        );
        assert!(
            svg.contains("2026-12-01") && svg.contains("2026-12-03"),
            "{svg}"
        );
        assert_eq!(svg.matches("<rect").count(), 3);
    }
}
