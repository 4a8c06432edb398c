//! Listing object storage by the layouts audit logs are delivered in, so that a date
//! range lists those days and no others:
//!
//! - CloudTrail: `…/AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/…`, organization
//!   trails with `<o-id>/` before the account;
//! - Cloud Logging exports to GCS: `…/cloudaudit.googleapis.com/<log>/YYYY/MM/DD/…`.
//!
//! Folders are walked with delimited listings down to the first one whose children are
//! years (`YYYY/`); under it, only the days of the range are listed. Accounts and
//! regions are filtered on the way down. A layout with no dated folder at all is listed
//! in full, with a warning.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectMeta, ObjectStore};

use super::remote::{Bucket, Object, store_error};
use crate::Result;

/// Which objects to list.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Events at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Events before this time.
    pub until: Option<DateTime<Utc>>,
    /// Only these AWS accounts (12-digit folders); empty: all.
    pub accounts: Vec<String>,
    /// Only these regions (folders under `CloudTrail/`); empty: all.
    pub regions: Vec<String>,
}

impl Selection {
    /// Whether anything narrows the listing.
    fn narrows(&self) -> bool {
        self.since.is_some()
            || self.until.is_some()
            || !self.accounts.is_empty()
            || !self.regions.is_empty()
    }
}

/// Folders below the given prefix walked at most, looking for dated folders.
const MAX_DEPTH: usize = 6;

/// Listings running at once.
const LISTINGS: usize = 16;

/// What a listing found.
#[derive(Debug, Default)]
pub struct Listed {
    /// In key order within each folder and day, days in order.
    pub objects: Vec<Object>,
    /// Objects left out by name (hidden, or an extension that is never a log).
    pub ignored: u64,
    /// What the user should know (objects the date range could not narrow).
    pub warnings: Vec<String>,
}

/// Part of a listing, in walk order.
enum Part {
    /// Objects a delimited listing already returned.
    Found(Vec<ObjectMeta>),
    /// Everything under a prefix, still to list.
    Under(ObjectPath),
}

/// The objects under `prefix` that `selection` asks for. Objects beside the dated
/// folders (or in a tree with none) are all listed: the range then applies to their
/// events only, and a warning says so.
pub async fn list(
    bucket: &Arc<Bucket>,
    prefix: &ObjectPath,
    selection: &Selection,
) -> Result<Listed> {
    if !selection.narrows() {
        return resolve(bucket, vec![Part::Under(prefix.clone())]).await;
    }
    let mut parts = Vec::new();
    let (mut dated, mut loose) = (0usize, 0usize);
    let mut folders = vec![(prefix.clone(), 0usize)];
    while let Some((folder, depth)) = folders.pop() {
        let listing = bucket
            .store
            .list_with_delimiter(Some(&folder))
            .await
            .map_err(|e| store_error(&url(bucket, &folder), "list", e))?;
        let names: Vec<String> = listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_owned))
            .collect();
        loose += listing
            .objects
            .iter()
            .filter(|m| super::inputs::may_be_log(m.location.as_ref()))
            .count();
        parts.push(Part::Found(listing.objects));
        let years: BTreeSet<i32> = names.iter().filter_map(|n| year(n)).collect();
        if !years.is_empty() {
            dated += 1;
            parts.extend(
                day_prefixes(&folder, &years, selection)
                    .into_iter()
                    .map(Part::Under),
            );
            continue;
        }
        let parent = folder.filename().unwrap_or_default().to_owned();
        let wanted = listing
            .common_prefixes
            .iter()
            .zip(&names)
            .filter(|(_, name)| wanted(&parent, name, selection));
        if depth >= MAX_DEPTH {
            // Deeper than any layout known: everything below is listed.
            parts.extend(wanted.map(|(path, _)| Part::Under(path.clone())));
            continue;
        }
        // Pushed in reverse so that folders are walked (and read) in key order.
        for (path, _) in wanted.rev() {
            folders.push((path.clone(), depth + 1));
        }
    }
    let mut listed = resolve(bucket, parts).await?;
    if dated == 0 {
        listed.warnings.push(format!(
            "no dated folders (YYYY/MM/DD) under `{}`: every object under it is read, and \
             --since/--until apply to the events only",
            url(bucket, prefix)
        ));
    } else if loose > 0 {
        listed.warnings.push(format!(
            "{loose} object(s) under `{}` are outside its dated folders (YYYY/MM/DD): they \
             are read whole, and --since/--until apply to their events only",
            url(bucket, prefix)
        ));
    }
    Ok(listed)
}

/// The parts' objects, in order, listing several prefixes at once.
async fn resolve(bucket: &Arc<Bucket>, parts: Vec<Part>) -> Result<Listed> {
    let listings = futures::stream::iter(parts)
        .map(|part| async move {
            match part {
                Part::Found(mut metas) => {
                    metas.sort_by(|a, b| a.location.cmp(&b.location));
                    Ok(metas)
                }
                Part::Under(prefix) => list_all(bucket, &prefix).await,
            }
        })
        .buffered(LISTINGS);
    futures::pin_mut!(listings);
    let mut listed = Listed::default();
    while let Some(metas) = listings.next().await {
        for meta in metas? {
            if !super::inputs::may_be_log(meta.location.as_ref()) {
                listed.ignored += 1;
                continue;
            }
            listed.objects.push(Object {
                bucket: Arc::clone(bucket),
                location: meta.location,
                size: meta.size,
            });
        }
    }
    Ok(listed)
}

/// Every object under `prefix`, in key order.
async fn list_all(bucket: &Arc<Bucket>, prefix: &ObjectPath) -> Result<Vec<ObjectMeta>> {
    let mut metas: Vec<ObjectMeta> = bucket
        .store
        .list(Some(prefix))
        .try_collect()
        .await
        .map_err(|e| store_error(&url(bucket, prefix), "list", e))?;
    metas.sort_by(|a, b| a.location.cmp(&b.location));
    Ok(metas)
}

fn url(bucket: &Bucket, path: &ObjectPath) -> String {
    format!("{}/{path}", bucket.url)
}

/// Whether the folder `name` under the folder `parent` may hold what is asked for.
fn wanted(parent: &str, name: &str, selection: &Selection) -> bool {
    let is_account = name.len() == 12 && name.bytes().all(|b| b.is_ascii_digit());
    if is_account && !selection.accounts.is_empty() {
        return selection.accounts.iter().any(|a| a == name);
    }
    if parent == "CloudTrail" && !selection.regions.is_empty() {
        return selection.regions.iter().any(|r| r == name);
    }
    // Integrity digests hold no events.
    !name.ends_with("-Digest")
}

fn year(name: &str) -> Option<i32> {
    (name.len() == 4 && name.bytes().all(|b| b.is_ascii_digit()))
        .then(|| name.parse().ok())
        .flatten()
        .filter(|y| (1970..=2200).contains(y))
}

/// The `YYYY/MM/DD` folders under `folder` that may hold events of the selection's
/// range: from the day of `since` to the day after that of `until`, because a file is
/// filed under the day it was delivered, after the events it holds. Without a bound,
/// the range starts with the first year present and ends tomorrow.
fn day_prefixes(
    folder: &ObjectPath,
    years: &BTreeSet<i32>,
    selection: &Selection,
) -> Vec<ObjectPath> {
    let first_year = years.first().copied().unwrap_or(1970);
    let first = selection.since.map_or_else(
        || NaiveDate::from_ymd_opt(first_year, 1, 1).unwrap_or_default(),
        |t| t.date_naive(),
    );
    let last_event = selection
        .until
        .map_or_else(Utc::now, |t| t - chrono::Duration::microseconds(1))
        .date_naive();
    let last = last_event
        .checked_add_days(Days::new(1))
        .unwrap_or(last_event);
    let mut prefixes = Vec::new();
    let mut day = first;
    while day <= last {
        if years.contains(&day.year()) {
            prefixes.push(ObjectPath::from_iter(folder.parts().chain([
                format!("{:04}", day.year()).into(),
                format!("{:02}", day.month()).into(),
                format!("{:02}", day.day()).into(),
            ])));
        }
        match day.succ_opt() {
            Some(next) => day = next,
            None => break,
        }
    }
    prefixes
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use futures::stream::BoxStream;
    use object_store::memory::InMemory;
    use object_store::{
        GetOptions, GetResult, ListResult, MultipartUpload, ObjectStoreExt, PutMultipartOptions,
        PutOptions, PutPayload, PutResult,
    };

    use super::*;

    /// An in-memory bucket that records the prefixes it was asked to list.
    #[derive(Debug)]
    struct Recorded {
        inner: InMemory,
        listed: Mutex<Vec<String>>,
    }

    impl std::fmt::Display for Recorded {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "Recorded({})", self.inner)
        }
    }

    #[async_trait::async_trait]
    impl ObjectStore for Recorded {
        async fn put_opts(
            &self,
            location: &ObjectPath,
            payload: PutPayload,
            opts: PutOptions,
        ) -> object_store::Result<PutResult> {
            self.inner.put_opts(location, payload, opts).await
        }
        async fn put_multipart_opts(
            &self,
            location: &ObjectPath,
            opts: PutMultipartOptions,
        ) -> object_store::Result<Box<dyn MultipartUpload>> {
            self.inner.put_multipart_opts(location, opts).await
        }
        async fn get_opts(
            &self,
            location: &ObjectPath,
            options: GetOptions,
        ) -> object_store::Result<GetResult> {
            self.inner.get_opts(location, options).await
        }
        fn delete_stream(
            &self,
            locations: BoxStream<'static, object_store::Result<ObjectPath>>,
        ) -> BoxStream<'static, object_store::Result<ObjectPath>> {
            self.inner.delete_stream(locations)
        }
        fn list(
            &self,
            prefix: Option<&ObjectPath>,
        ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
            self.record(prefix, "list");
            self.inner.list(prefix)
        }
        async fn list_with_delimiter(
            &self,
            prefix: Option<&ObjectPath>,
        ) -> object_store::Result<ListResult> {
            self.record(prefix, "dirs");
            self.inner.list_with_delimiter(prefix).await
        }
        async fn copy_opts(
            &self,
            from: &ObjectPath,
            to: &ObjectPath,
            options: object_store::CopyOptions,
        ) -> object_store::Result<()> {
            self.inner.copy_opts(from, to, options).await
        }
    }

    impl Recorded {
        fn record(&self, prefix: Option<&ObjectPath>, kind: &str) {
            if let Ok(mut listed) = self.listed.lock() {
                listed.push(format!(
                    "{kind} {}",
                    prefix.map(ToString::to_string).unwrap_or_default()
                ));
            }
        }
    }

    const KEYS: [&str; 10] = [
        "AWSLogs/111111111111/CloudTrail/us-east-1/2025/12/31/a.json.gz",
        "AWSLogs/111111111111/CloudTrail/us-east-1/2026/01/05/b.json.gz",
        "AWSLogs/111111111111/CloudTrail/us-east-1/2026/01/06/c.json.gz",
        "AWSLogs/111111111111/CloudTrail/us-east-1/2026/01/07/d.json.gz",
        "AWSLogs/111111111111/CloudTrail/eu-west-1/2026/01/05/e.json.gz",
        "AWSLogs/111111111111/CloudTrail-Digest/us-east-1/2026/01/05/f.json.gz",
        "AWSLogs/o-abcdefghij/222222222222/CloudTrail/us-east-1/2026/01/05/g.json.gz",
        "cloudaudit.googleapis.com/activity/2026/01/05/00:00:00_00:59:59_S0.json",
        "README.md",
        "stratus/x.json",
    ];

    async fn bucket() -> (Arc<Bucket>, Arc<Recorded>) {
        let store = Arc::new(Recorded {
            inner: InMemory::new(),
            listed: Mutex::new(Vec::new()),
        });
        for key in KEYS {
            let put = store
                .put(&ObjectPath::from(key), PutPayload::from_static(b"{}"))
                .await;
            assert!(put.is_ok(), "{put:?}");
        }
        if let Ok(mut listed) = store.listed.lock() {
            listed.clear();
        }
        let bucket = Arc::new(Bucket {
            url: "s3://logs".to_owned(),
            store: Arc::clone(&store) as Arc<dyn ObjectStore>,
        });
        (bucket, store)
    }

    fn at(date: &str) -> Option<DateTime<Utc>> {
        NaiveDate::parse_from_str(date, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc())
    }

    async fn listed(
        selection: &Selection,
        prefix: &str,
    ) -> (Vec<String>, Vec<String>, Vec<String>) {
        let (bucket, store) = bucket().await;
        let listed = list(&bucket, &ObjectPath::from(prefix), selection).await;
        let Listed {
            objects, warnings, ..
        } = listed.unwrap_or_else(|e| panic!("listing failed: {e}"));
        let names = objects
            .iter()
            .map(|o| o.location.filename().unwrap_or_default().to_owned())
            .collect();
        let listed = store.listed.lock().map(|l| l.clone()).unwrap_or_default();
        (names, listed, warnings)
    }

    #[tokio::test]
    async fn one_day_lists_that_day_and_the_next_only() {
        let selection = Selection {
            since: at("2026-01-05"),
            until: at("2026-01-06"),
            ..Selection::default()
        };
        let (names, listed, warnings) = listed(&selection, "").await;
        // Day 5 in both regions, the org trail's account and the GCS export; day 6
        // (files delivered after midnight); nothing of day 7 or 2025, no digest. The
        // folder without dates is read whole, with a warning.
        assert_eq!(
            names,
            [
                "e.json.gz",
                "b.json.gz",
                "c.json.gz",
                "g.json.gz",
                "00:00:00_00:59:59_S0.json",
                "x.json"
            ]
        );
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("1 object(s) under `s3://logs/`"),
            "{warnings:?}"
        );
        let full: Vec<&String> = listed.iter().filter(|l| l.starts_with("list ")).collect();
        assert_eq!(
            full.len(),
            8,
            "two days in each of four dated folders: {full:?}"
        );
        assert!(
            full.iter()
                .all(|l| l.contains("/2026/01/05") || l.contains("/2026/01/06"))
        );
        assert!(!listed.iter().any(|l| l.contains("Digest")), "{listed:?}");
    }

    #[tokio::test]
    async fn accounts_and_regions_narrow_the_walk() {
        let selection = Selection {
            since: at("2026-01-01"),
            until: at("2026-01-08"),
            accounts: vec!["222222222222".to_owned()],
            regions: vec!["us-east-1".to_owned()],
        };
        let (names, listed, _) = listed(&selection, "AWSLogs").await;
        assert_eq!(names, ["g.json.gz"]);
        assert!(
            !listed.iter().any(|l| l.contains("111111111111/")),
            "{listed:?}"
        );
    }

    #[tokio::test]
    async fn no_bound_lists_from_the_first_year_on() {
        let selection = Selection {
            regions: vec!["us-east-1".to_owned()],
            until: at("2026-01-06"),
            ..Selection::default()
        };
        let (names, _, _) = listed(&selection, "AWSLogs/111111111111").await;
        assert_eq!(names, ["a.json.gz", "b.json.gz", "c.json.gz"]);
    }

    #[tokio::test]
    async fn other_layouts_are_listed_whole_with_a_warning() {
        let selection = Selection {
            since: at("2026-01-05"),
            ..Selection::default()
        };
        let (names, _, warnings) = listed(
            &selection,
            "AWSLogs/111111111111/CloudTrail/us-east-1/2026/01",
        )
        .await;
        assert_eq!(names, ["b.json.gz", "c.json.gz", "d.json.gz"]);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        // Without a selection, everything is listed in key order, README.md aside.
        let (names, _, _) = listed(&Selection::default(), "").await;
        assert_eq!(names.len(), KEYS.len() - 1);
        assert!(!names.contains(&"README.md".to_owned()));
    }
}
