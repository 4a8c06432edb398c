//! The last step of an event: its row, or, under a row filter, only its accounting.

use crate::builder::EventRow;
use crate::cloudtrail::{EventError, Identified};
use crate::document::Document;
use crate::filter::RowKeys;
use crate::outcome::Leniencies;
use crate::{Cursor, Normalizer, SkipReason, head};

impl Normalizer {
    /// With a row filter, reads only the head of a CloudTrail record (see
    /// [`head::Head`]) and, when the filter turns it away, accounts for it as the whole
    /// record would have been. False, having done nothing, when the record needs to be
    /// read whole: the filter keeps it, its head cannot decide, or it does not parse
    /// (the whole record's parse then reports why).
    pub(crate) fn unmatched_record(&mut self, text: &str, cursor: Cursor<'_>) -> bool {
        let Some(filter) = &self.options.row_filter else {
            return false;
        };
        let Ok(mut head) = sonic_rs::from_str::<head::Head<'_>>(text) else {
            return false;
        };
        if head
            .event_source
            .as_deref()
            .is_some_and(|s| s.starts_with("aws:"))
        {
            self.skip(SkipReason::AwsNotification);
            return true;
        }
        if !head.decides() || filter.keeps(&head.keys()) {
            return false;
        }
        match head.identify(text) {
            Ok(identified) if !self.in_time_range(identified.time_us) => {
                self.skip(SkipReason::OutsideTimeRange);
            }
            Ok(identified) => self.unmatched(identified.lenient),
            Err((reason, detail)) => self.reject(reason, detail, cursor, text.as_bytes()),
        }
        true
    }

    pub(crate) fn event<'a, K: EventKind>(
        &mut self,
        doc: &mut Document<'a>,
        text: &'a str,
        cursor: Cursor<'_>,
    ) {
        let bytes = text.as_bytes();
        if bytes.len() > self.options.max_event_bytes {
            return self.oversize(bytes, cursor);
        }
        let identified = match K::identify(doc, text) {
            Ok(identified) => identified,
            Err((reason, detail)) => return self.reject(reason, detail, cursor, bytes),
        };
        if !self.in_time_range(identified.time_us) {
            return self.skip(SkipReason::OutsideTimeRange);
        }
        if let Some(filter) = &self.options.row_filter
            && !filter.keeps(&K::keys(doc))
        {
            return self.unmatched(identified.lenient);
        }
        if let Some(filter) = &self.options.mark_rows {
            self.marks.push(filter.keeps(&K::keys(doc)));
        }
        self.stats.lenient(identified.lenient);
        let raw = self.options.keep_raw.then_some(text);
        let row = K::to_row(doc, identified, raw);
        let position = self.position(cursor);
        self.stats.events_in += 1;
        self.stats.events_out += 1;
        self.builder.append(&row, &position);
    }

    /// An event the row filter turned away, whose id and time were read: counted, and
    /// its position used, so that the positions of the rows built are those of the full
    /// path.
    fn unmatched(&mut self, lenient: Leniencies) {
        self.next_index = self.next_index.saturating_add(1);
        self.stats.events_in += 1;
        self.stats.events_out += 1;
        self.stats.events_unmatched += 1;
        self.stats.lenient(lenient);
    }
}

/// How one provider's events become rows.
pub(crate) trait EventKind {
    /// The columns a [`crate::RowFilter`] tests.
    fn keys<'d>(doc: &'d Document<'_>) -> RowKeys<'d>;
    /// The event's id and time, or why it is rejected; `text` is the event's JSON.
    fn identify<'a>(doc: &mut Document<'a>, text: &str) -> Result<Identified<'a>, EventError>;
    /// The row of an identified event.
    fn to_row<'a>(
        doc: &mut Document<'a>,
        identified: Identified<'a>,
        raw: Option<&'a str>,
    ) -> EventRow<'a>;
}
